"""Storage bench: PostgreSQL bytes per finished six-message conversation, per table, in sandbox and Google mode.

Run: `.venv/bin/python -m bench.storage [--conversations 30] [--mode sandbox|google|both]` (about 2 minutes).
Each mode gets its own embedded PostgreSQL (pgserver) and a real `email-assistant serve` (in-process worker) against
tests/fakes (the OpenAI wire fake with the scripted model; in Google mode also the OIDC, Gmail and Pub/Sub push
fakes). N conversations run side by side: first email, reply, answer, reply, answer, final reply, closed. The server
is stopped, the database VACUUM FULLed and pg_total_relation_size summed per table, minus the same figure taken
before the first conversation (migrated, signed in, one persona), divided by N. Index and table sizes grow by whole
8 KB pages: with N conversations one page is 8/N KB a conversation, so use enough of them (30: 0.27 KB).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench import procs
from tests.fakes.gmail import FakeGmail
from tests.fakes.google_oidc import FakeGoogleOIDC
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.pubsub_push import PushSigner
from tests.fakes.scripted_model import ScriptedModel
from tests.support import (
    ALICE,
    ALWAYS_OPEN,
    PERSONA,
    PUSH_ACCOUNT,
    PUSH_AUDIENCE,
    GoogleWorld,
    ServerProcess,
    wait_until,
)

log = logging.getLogger("bench.storage")
TEXTS = ("Interested - what does it cost?", "Sounds good. How does onboarding work?", "Not interested, thanks.")
"""The recipient's three replies: two questions the assistant answers, then the one that closes the thread."""


@contextmanager
def database() -> Iterator[str]:
    """A fresh embedded PostgreSQL with one empty database; yields its conninfo."""
    work = Path(tempfile.mkdtemp(prefix="ea-storage-"))
    work.chmod(0o755)  # as root, pgserver runs postgres as an unprivileged user
    try:
        with procs.database(None, work, prefix="storage") as url:
            yield url
    finally:
        shutil.rmtree(work, ignore_errors=True)


def base_env(url: str, fake: FakeOpenAI, data: Path) -> dict[str, str]:
    """The server's environment: this database, the model fake, quick job polling, no DNS."""
    return {"DATABASE_URL": url, "EA_DATA_DIR": str(data), "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake.base_url,
            "EA_LLM_MODEL": "fake-model", "EA_LLM_MAX_RETRIES": "0", "EA_JOB_POLL_SECONDS": "0.2",
            "EA_CHECK_DELIVERABILITY": "false", "EA_LOG_LEVEL": "WARNING"}


def counts(url: str, ids: list[str]) -> dict[str, tuple[int, int, str]]:
    """Per thread: outbound and inbound messages, and the status."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT t.id::text, count(*) FILTER (WHERE m.direction = 'out'), count(*) FILTER (WHERE m.direction = 'in'),"
            " t.status FROM threads t LEFT JOIN messages m ON m.thread_id = t.id WHERE t.id = ANY(%s::uuid[])"
            " GROUP BY t.id", (ids,)).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def converse(url: str, ids: list[str], reply: Callable[[str, str], None]) -> None:
    """Drive every thread through the six messages: reply(thread_id, text) delivers the recipient's reply."""
    def every(check: Callable[[tuple[int, int, str]], bool]) -> bool:
        found = counts(url, ids)  # a thread whose creation has not committed yet is not there: not done
        return len(found) == len(ids) and all(check(c) for c in found.values())

    for step, text in enumerate(TEXTS, start=1):
        wait_until(lambda step=step: every(lambda c: c[0] >= step), timeout=300,
                   what=f"{step} outbound message(s) in every thread")
        for tid in ids:
            reply(tid, text)
    wait_until(lambda: every(lambda c: c[2] == "closed"), timeout=300, what="all closed")
    time.sleep(1.0)  # the close path's last commits (and the pruning) land
    bad = {t: c for t, c in counts(url, ids).items() if c != (3, 3, "closed")}
    if bad:
        raise RuntimeError(f"{len(bad)} conversation(s) did not end as 3 out, 3 in, closed: {list(bad.items())[:3]}")


def sandbox(url: str, fake: FakeOpenAI, work: Path, n: int) -> tuple[dict[str, int], dict[str, int]]:
    """Local mode: replies through the sandbox API; the sizes before and after."""
    server = ServerProcess(base_env(url, fake, work / "data"), log_path=work / "server.log")
    server.start()
    try:
        persona = server.create_assistant(autonomy="autonomous", **ALWAYS_OPEN)["id"]
        before = sizes(url)
        ids = [server.create_thread(persona, f"conv{i}@example.com")["id"] for i in range(n)]
        converse(url, ids, lambda tid, text: server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": text}))
    finally:
        server.stop()
    return before, sizes(url)


def google(url: str, fake: FakeOpenAI, work: Path, n: int) -> tuple[dict[str, int], dict[str, int]]:
    """Google mode against the fakes: sent through Gmail, replies delivered to the mailbox and announced by push."""
    with FakeGoogleOIDC() as oidc, FakeGmail(oidc.email_for_access_token,
                                            scope_lookup=oidc.scopes_for_access_token) as gmail:
        oidc.add_user("110000000000000000001", ALICE, "Alice Example")
        world = GoogleWorld(oidc, gmail, PushSigner(oidc, audience=PUSH_AUDIENCE, service_account_email=PUSH_ACCOUNT))
        server = world.server(base_env(url, fake, work / "data"), work / "server.log")
        try:
            alice = world.sign_in(server, ALICE)
            alice.patch("/api/settings/sending", json={"spacing_min_seconds": 0, "spacing_max_seconds": 0,
                                                          "daily_cap": 2000, "per_thread_daily_max": 20}) \
                .raise_for_status()
            persona = alice.post("/api/assistants", json={**PERSONA, **ALWAYS_OPEN, "autonomy": "autonomous"}) \
                .raise_for_status().json()["id"]
            wait_until(lambda: alice.get(f"/api/assistants/{persona}").status_code == 200, what="persona committed")
            before = sizes(url)
            recipients: dict[str, str] = {}
            for i in range(n):
                r = alice.post("/api/threads", json={"assistant_id": persona, "recipient_email": f"conv{i}@example.org"})
                recipients[r.raise_for_status().json()["id"]] = f"conv{i}@example.org"

            def reply(tid: str, text: str) -> None:
                last = [m for m in gmail.sent(ALICE) if m["To"].addresses[0].addr_spec == recipients[tid]][-1]
                world.reply(ALICE, last, text)
                if tid == list(recipients)[-1]:  # one notification announces every reply of this step
                    world.push(server, ALICE).raise_for_status()

            converse(url, list(recipients), reply)
            alice.close()
        finally:
            server.stop()
    return before, sizes(url)


LIVE_STATE = {"procrastinate_workers"}
"""The running processes' heartbeat rows: not the conversations' data (gone once the server stops)."""


def sizes(url: str) -> dict[str, int]:
    """After VACUUM FULL: bytes of every public table with its TOAST (`table`), and of each index (`table/index`)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM FULL")
        rows = conn.execute(
            "SELECT c.relname, pg_relation_size(c.oid) + coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)),"
            " 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'"
            " UNION ALL SELECT t.relname || '/' || i.relname, pg_relation_size(i.oid) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'").fetchall()
    return {name: size for name, size in rows if name.split("/")[0] not in LIVE_STATE}


def per_conversation(before: dict[str, int], after: dict[str, int], n: int) -> dict[str, float]:
    """Bytes per conversation by table and index (those that did not grow left out)."""
    grown = {t: (after.get(t, 0) - before.get(t, 0)) / n for t in after}
    return {t: b for t, b in sorted(grown.items(), key=lambda kv: -kv[1]) if b}


def by_table(grown: dict[str, float]) -> dict[str, float]:
    """Table, TOAST and indexes summed per table (what pg_total_relation_size counts)."""
    total: dict[str, float] = {}
    for name, size in grown.items():
        total[name.split("/")[0]] = total.get(name.split("/")[0], 0) + size
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def measure(mode: str, n: int) -> dict[str, float]:
    """Run n conversations in this mode on a fresh database; bytes per conversation by table."""
    run = {"sandbox": sandbox, "google": google}[mode]
    work = Path(tempfile.mkdtemp(prefix=f"ea-storage-{mode}-"))
    try:
        with database() as url, FakeOpenAI(responder=ScriptedModel()) as fake:
            before, after = run(url, fake, work, n)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return per_conversation(before, after, n)


def report(results: dict[str, dict[str, float]], n: int) -> str:
    """Markdown: KB per conversation by table and mode with the totals, then by index."""
    return table({m: by_table(r) for m, r in results.items()}, n, "table") + "\n\n" + table(
        {m: {k: v for k, v in r.items() if "/" in k} for m, r in results.items()}, n, "index (in the table's figure)")


def table(results: dict[str, dict[str, float]], n: int, what: str) -> str:
    """One Markdown table of KB per conversation, a column per mode."""
    modes = list(results)
    tables = sorted({t for r in results.values() for t in r}, key=lambda t: -max(r.get(t, 0) for r in results.values()))
    lines = [f"KB per finished six-message conversation ({n} conversations, after VACUUM FULL)", "",
             f"| {what} | " + " | ".join(modes) + " |", "|---|" + "---:|" * len(modes)]
    lines += [f"| {t} | " + " | ".join(f"{results[m].get(t, 0) / 1024:.2f}" for m in modes) + " |" for t in tables]
    lines.append("| **total** | " + " | ".join(f"**{sum(results[m].values()) / 1024:.2f}**" for m in modes) + " |")
    return "\n".join(lines)


def main() -> None:
    """Measure the chosen modes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--mode", choices=("sandbox", "google", "both"), default="both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for chatty in ("httpx", "pgserver"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    modes = ("sandbox", "google") if args.mode == "both" else (args.mode,)
    results = {}
    for mode in modes:
        log.info("%s: %d conversations", mode, args.conversations)
        results[mode] = measure(mode, args.conversations)
    sys.stdout.write(report(results, args.conversations) + "\n")


if __name__ == "__main__":
    main()

