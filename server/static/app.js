/* The dashboard's few behaviours: CSRF header for htmx, local times, confirmations, keeping typed text. */
(function () {
  "use strict";
  var dirty = false;

  function localTimes(root) {
    var lang = document.documentElement.lang || undefined;
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) {
        el.title = el.textContent;
        el.textContent = d.toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
      }
    });
  }

  document.addEventListener("htmx:configRequest", function (evt) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) evt.detail.headers["X-CSRF-Token"] = meta.content;
  });

  // The live part of a thread page refreshes itself; never while you are typing in it.
  document.addEventListener("input", function (evt) {
    if (evt.target.closest && evt.target.closest("#live")) dirty = true;
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "live") dirty = false;
  });
  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (dirty && evt.detail.elt && evt.detail.elt.id === "live") evt.preventDefault();
  });

  document.addEventListener("submit", function (evt) {
    var msg = evt.target.getAttribute && evt.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) evt.preventDefault();
  });

  document.addEventListener("htmx:load", function (evt) { localTimes(evt.detail.elt); });
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var menu = document.querySelector("details.menu");
    if (menu && window.matchMedia("(max-width: 860px)").matches) menu.removeAttribute("open");
  });
})();
