"""Domain-wide stop: one decline or opt-out at a company closes the user's other open threads there."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from agent.threads.company import domain_of, is_free_mail
from tests.support import ServerProcess, fire_timers, query, queue_follow_up, wait_until


def _start(server: ServerProcess, persona: dict, *emails: str) -> dict[str, str]:
    ids = {email: server.create_thread(persona["id"], email)["id"] for email in emails}
    for tid in ids.values():
        server.wait_status(tid, "waiting")
    return ids


def _closed_by(server: ServerProcess, tid: str) -> dict:
    t = server.thread(tid)
    assert (t["status"], t["close_reason"]) == ("closed", "company_declined"), t["status"]
    [event] = [e for e in t["events"] if e["kind"] == "closed"]
    return event


def _outbound_to(database_url: str, email: str) -> int:
    rows = query(database_url, "SELECT raw FROM sandbox_mail WHERE direction = 'out'")
    return sum(message_from_bytes(bytes(r["raw"]), policy=policy.default)["To"].addresses[0].addr_spec == email
               for r in rows)


def _one_click(server: ServerProcess, database_url: str, email: str) -> None:
    raw = query(database_url, "SELECT raw FROM sandbox_mail WHERE direction = 'out' ORDER BY id")
    mail = next(m for r in raw if (m := message_from_bytes(bytes(r["raw"]), policy=policy.default))["To"]
                .addresses[0].addr_spec == email)
    path = "/u/" + str(mail["List-Unsubscribe"]).split("/u/", 1)[1].rstrip(">")
    r = server.post(path, content=b"List-Unsubscribe=One-Click",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json() == {"status": "unsubscribed"}, r.text


def test_decline_closes_the_company_but_not_free_mail(server: ServerProcess, database_url: str) -> None:
    stopper = server.create_assistant(autonomy="autonomous", stop_company_on_decline=True)
    other_persona = server.create_assistant(name="Other", autonomy="autonomous")
    ids = _start(server, stopper, "bob@acme.com", "carol@acme.com", "zed@other.com", "erin@gmail.com",
                 "frank@gmail.com")
    ids.update(_start(server, other_persona, "dan@acme.com"))

    carol_wait = server.thread(ids["carol@acme.com"])["wait_id"]
    server.post(f"/api/threads/{ids['bob@acme.com']}/sandbox-reply", json={"text": "Not interested, thanks."})
    bob = server.wait_status(ids["bob@acme.com"], "closed")
    assert bob["close_reason"] == "not_interested"
    # The other open threads at acme.com close, whichever persona started them, naming the thread that declined.
    for email in ("carol@acme.com", "dan@acme.com"):
        wait_until(lambda e=email: server.thread(ids[e])["status"] == "closed", what=f"{email} closed")
        event = _closed_by(server, ids[email])
        assert event["detail"]["trigger_thread_id"] == ids["bob@acme.com"]
        assert event["detail"]["domain"] == "acme.com" and ids["bob@acme.com"] in event["summary"]
    [stopped] = [e for e in bob["events"] if e["kind"] == "company_stopped"]
    assert sorted(stopped["detail"]["recipients"]) == ["carol@acme.com", "dan@acme.com"]
    assert server.thread(ids["zed@other.com"])["status"] == "waiting", "another company is untouched"
    assert query(database_url, "SELECT email FROM suppressions") == [], "a decline does not suppress colleagues"

    # A thread closed this way has no timer left, and a follow-up queued just before the close is ignored.
    assert fire_timers(database_url, ids["carol@acme.com"], carol_wait) == 0
    queue_follow_up(database_url, ids["carol@acme.com"], carol_wait)
    wait_until(lambda: [e for e in server.thread(ids["carol@acme.com"])["events"] if e["kind"] == "ignored"],
               what="the timer of a company-closed thread to be ignored")
    assert server.thread(ids["carol@acme.com"])["status"] == "closed"
    assert _outbound_to(database_url, "carol@acme.com") == 1

    # On a free-mail domain an opt-out says nothing about anyone else.
    server.post(f"/api/threads/{ids['erin@gmail.com']}/sandbox-reply", json={"text": "Please unsubscribe me."})
    assert server.wait_status(ids["erin@gmail.com"], "closed")["close_reason"] == "unsubscribed"
    frank = server.thread(ids["frank@gmail.com"])
    assert frank["status"] == "waiting" and not [e for e in frank["events"] if e["kind"] == "closed"]


def test_only_when_the_persona_asks_and_one_click_counts(server: ServerProcess, database_url: str) -> None:
    plain = server.create_assistant(autonomy="autonomous")
    stopper = server.create_assistant(name="Stopper", autonomy="autonomous", stop_company_on_decline=True)
    ids = _start(server, plain, "amy@beta.example", "ben@beta.example")
    ids.update(_start(server, stopper, "cy@gamma.example", "di@gamma.example"))

    # The persona did not ask for a domain-wide stop: a decline closes only its own thread.
    server.post(f"/api/threads/{ids['amy@beta.example']}/sandbox-reply", json={"text": "We are not interested."})
    assert server.wait_status(ids["amy@beta.example"], "closed")["close_reason"] == "not_interested"
    assert server.thread(ids["ben@beta.example"])["status"] == "waiting"

    # An opt-out through the one-click link stops the company too.
    _one_click(server, database_url, "cy@gamma.example")
    assert server.thread(ids["cy@gamma.example"])["close_reason"] == "unsubscribed"
    event = _closed_by(server, ids["di@gamma.example"])
    assert event["detail"] == {"reason": "company_declined", "trigger_thread_id": ids["cy@gamma.example"],
                               "domain": "gamma.example", "trigger_reason": "unsubscribed"}
    assert "opted out" in event["summary"]
    assert query(database_url, "SELECT email FROM suppressions") == [{"email": "cy@gamma.example"}]

    # Even when the opt-out comes after that person's thread was already closed.
    ids.update(_start(server, stopper, "ed@delta.example", "flo@delta.example"))
    assert server.post(f"/api/threads/{ids['ed@delta.example']}/stop").status_code == 202
    _one_click(server, database_url, "ed@delta.example")
    assert server.thread(ids["ed@delta.example"])["close_reason"] == "stopped"
    assert _closed_by(server, ids["flo@delta.example"])["detail"]["trigger_thread_id"] == ids["ed@delta.example"]


@pytest.mark.parametrize(("domain", "free"), [
    ("gmail.com", True), ("googlemail.com", True), ("GMX.de", True), ("gmx.net", True), ("yahoo.co.uk", True),
    ("hotmail.fr", True), ("web.de", True), ("mail.ru", True), ("proton.me", True), ("icloud.com", True),
    ("acme.com", False), ("mail.acme.com", False), ("live.acme-corp.com", False), ("gmxtra.de", False),
])
def test_free_mail_domains(domain: str, free: bool) -> None:
    assert is_free_mail(domain) is free


def test_domain_of() -> None:
    assert domain_of(" Bob@ACME.com ") == "acme.com"
    assert domain_of("weird@sub@acme.io") == "acme.io"
    assert domain_of("no-at-sign") == ""
