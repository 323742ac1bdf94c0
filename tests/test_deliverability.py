"""Recipient domains are checked for MX (or A) before the first email, against a local DNS fake, never the network."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import Settings
from agent.imports.deliverability import DomainCheck, Reason, Verdict, check_domains
from tests.fakes.dns import FakeDNS
from tests.support import ServerProcess, query, wait_until

TIMEOUT = 0.5


@pytest.fixture
def fake_dns() -> Iterator[FakeDNS]:
    fake = FakeDNS().start()
    yield fake
    fake.stop()


def settings(fake: FakeDNS, **extra: object) -> Settings:
    return Settings(EA_DNS_SERVERS=fake.address, EA_DNS_TIMEOUT_SECONDS=TIMEOUT, **extra)


async def test_each_kind_of_domain(fake_dns: FakeDNS) -> None:
    results = await check_domains(["MX-OK.example.net", "a-only.example.net", "nowhere.example.net",
                                   "null-mx.example.net", "no-mail.example.net", "silent.example.net"],
                                  settings=settings(fake_dns))
    assert results == {
        "mx-ok.example.net": DomainCheck("mx-ok.example.net", Verdict.OK),
        "a-only.example.net": DomainCheck("a-only.example.net", Verdict.OK),
        "nowhere.example.net": DomainCheck("nowhere.example.net", Verdict.REFUSED, Reason.NO_DOMAIN),
        "null-mx.example.net": DomainCheck("null-mx.example.net", Verdict.REFUSED, Reason.NULL_MX),
        "no-mail.example.net": DomainCheck("no-mail.example.net", Verdict.REFUSED, Reason.NO_MAIL_HOST),
        "silent.example.net": DomainCheck("silent.example.net", Verdict.NOT_CHECKED, Reason.TIMEOUT),
    }
    assert fake_dns.queries[("a-only.example.net", "A")] == 1, "the A fallback was really asked"


async def test_a_dead_resolver_never_blocks(fake_dns: FakeDNS) -> None:
    fake_dns.stop()  # nothing listens on that port any more
    started = time.monotonic()
    results = await check_domains(["mx-ok.example.net"], settings=settings(fake_dns))
    assert results["mx-ok.example.net"].verdict is Verdict.NOT_CHECKED
    assert time.monotonic() - started < 4 * TIMEOUT


async def test_disabled_checks_ask_nothing(fake_dns: FakeDNS) -> None:
    results = await check_domains(["nowhere.example.net"], settings=settings(fake_dns, EA_CHECK_DELIVERABILITY=False))
    assert results["nowhere.example.net"] == DomainCheck("nowhere.example.net", Verdict.NOT_CHECKED, Reason.DISABLED)
    assert not fake_dns.queries


async def test_many_rows_are_bounded_and_cached(fake_dns: FakeDNS) -> None:
    silent = [f"slow{i}.example.net" for i in range(40)]
    fake_dns.silent.update(silent)
    domains = ["mx-ok.example.net"] * 400 + silent + [f"gone{i}.example.net" for i in range(60)]
    started = time.monotonic()
    results = await check_domains(domains, settings=settings(fake_dns))
    elapsed = time.monotonic() - started
    assert elapsed < 10 * TIMEOUT + 1, f"{elapsed:.1f}s: lookups must run concurrently"  # 40 timeouts in series: 20s
    assert all(results[d].verdict is Verdict.NOT_CHECKED for d in silent)
    assert results["gone7.example.net"].reason is Reason.NO_DOMAIN
    assert fake_dns.queries[("mx-ok.example.net", "MX")] == 1, "one lookup per domain"


# The import page, on a real server and database, pointed at the fake resolver.

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def dns_server(server_env: dict[str, str], fake_dns: FakeDNS, tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(server_env, log_path=tmp_path / "server.log")
    proc.start(EA_CHECK_DELIVERABILITY="true", EA_DNS_SERVERS=fake_dns.address, EA_DNS_TIMEOUT_SECONDS=str(TIMEOUT))
    yield proc
    proc.stop()


def test_import_preview_refuses_domains_that_take_no_mail(dns_server: ServerProcess) -> None:
    c = dns_server.client
    persona = dns_server.create_assistant(autonomy="approve_first")
    csrf = TOKEN.search(c.get("/threads/import").text).group(1)
    rows = ["Почта;Имя", "ann@mx-ok.example.net;Анна", "bo@a-only.example.net;Борис", "cy@nowhere.example.net;Кирилл",
            "di@null-mx.example.net;Дина", "ed@silent.example.net;Эдуард", "fa@no-mail.example.net;Фаина"]
    data = ("\r\n".join(rows) + "\r\n").encode("cp1251")
    started = time.monotonic()
    r = c.post("/threads/import", data={"csrf_token": csrf, "assistant_id": persona["id"]},
               files={"file": ("people.csv", data, "text/csv")})
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 5, "a silent DNS server does not hold the page up"
    html = r.text
    assert "Read as Windows-1251, semicolon-separated." in html
    counts = html[html.find('id="import-check"'):][:1000]
    assert re.search(r'id="count-ready">3<', html) and re.search(r'id="count-invalid">3<', html), counts

    def why(row: int) -> str:
        found = re.search(rf'<tr data-row="{row}">(.*?)</tr>', html, re.S)
        return re.sub(r"\s+", " ", found.group(1)) if found else ""

    assert "Cannot receive email" in why(3) and "The domain does not exist." in why(3)
    assert "null MX" in why(4)
    assert "no mail server" in why(6)
    assert why(1) == why(2) == why(5) == "", "deliverable and unchecked rows are not refused"
    assert re.search(r'id="dns-unchecked">\s*1 address could not be checked.*row 5\.', html, re.S)

    # Starting re-checks the carried rows and creates only the three that may start.
    form = {"csrf_token": csrf, "assistant_id": persona["id"], "map_email": "Почта", "map_name": "Имя",
            "csv_text": re.search(r'<textarea name="csv_text"[^>]*>(.*?)</textarea>', html, re.S).group(1),
            **dict(re.findall(r'<input type="hidden" name="(source_\w+)" value="([^"]*)">', html))}
    r = c.post("/threads/import/check", data=form, headers={"hx-request": "true"})
    assert r.status_code == 200 and 'id="count-ready">3<' in r.text and "null MX" in r.text
    r = c.post("/threads/import/start", data=form)
    assert r.status_code == 200, r.text
    db = dns_server.env["DATABASE_URL"]
    wait_until(lambda: query(db, "SELECT count(*) AS n FROM threads")[0]["n"] == 3, what="three threads")
    emails = {t["recipient_email"] for t in query(db, "SELECT recipient_email FROM threads")}
    assert emails == {"ann@mx-ok.example.net", "bo@a-only.example.net", "ed@silent.example.net"}
    assert {t["recipient_name"] for t in query(db, "SELECT recipient_name FROM threads")} == {"Анна", "Борис", "Эдуард"}


def test_dns_server_setting_is_validated() -> None:
    assert Settings(EA_DNS_SERVERS="127.0.0.1:5353, [::1]:53, 9.9.9.9").dns_server_addresses == [
        ("127.0.0.1", 5353), ("::1", 53), ("9.9.9.9", 53)]
    assert Settings(EA_DNS_SERVERS="").dns_server_addresses == []
    for bad in ("dns.example.net", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(ValueError, match="EA_DNS_SERVERS"):
            Settings(EA_DNS_SERVERS=bad)


async def test_international_domains_are_looked_up_in_punycode(fake_dns: FakeDNS) -> None:
    fake_dns.zone["xn--e1afmkfd.xn--p1ai"] = {"MX": ["10 mx.example.com."]}
    results = await check_domains(["пример.рф", "Пример.РФ"], settings=settings(fake_dns))
    assert results == {"пример.рф": DomainCheck("пример.рф", Verdict.OK)}
    assert fake_dns.queries[("xn--e1afmkfd.xn--p1ai", "MX")] == 1
