"""Bulk actions, the CSV export, search inside mail and the sequence preview in Debian's chromium."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.support import ServerProcess, query, wait_until
from tests.test_dashboard_browser import CHROMIUM, browser, page  # noqa: F401 - the shared fixtures

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")


def _threads(server: ServerProcess, n: int) -> list[str]:
    persona = server.create_assistant()
    ids = [server.create_thread(persona["id"], f"person{i}@example.com", recipient_name=f"Person {i}")["id"]
           for i in range(n)]
    for tid in ids:
        server.wait_status(tid, "awaiting_approval")
    return ids


def test_select_rows_confirm_and_see_each_outcome(page, server: ServerProcess, database_url: str) -> None:  # noqa: F811
    from playwright.sync_api import expect

    ids = _threads(server, 3)
    assert server.post(f"/api/threads/{ids[0]}/stop").status_code == 202
    page.goto("/threads")
    expect(page.locator("#scope-all").locator("xpath=..")).to_contain_text("Everything the filter matches (3)")
    page.get_by_label("Select Person 0").check()
    page.get_by_label("Select Person 1").check()
    page.locator('[data-bulk="pause"]').click()
    expect(page.locator("#bulk-count")).to_contain_text("Pause 2 threads?")
    expect(page.locator(".bulk-names")).to_contain_text("Person 0")
    page.locator("#bulk-run").click()
    expect(page.locator("#bulk-summary")).to_have_text("Done: 1. Skipped: 1.")
    expect(page.locator('#bulk-outcomes tr[data-outcome="skipped"]')).to_contain_text("already closed")
    expect(page.locator('#bulk-outcomes tr[data-outcome="done"]')).to_contain_text("Person 1")
    rows = query(database_url, "SELECT recipient_name, status FROM threads ORDER BY recipient_name")
    assert [r["status"] for r in rows] == ["closed", "paused", "awaiting_approval"]

    # Everything the filter matches: resume the paused ones.
    page.get_by_role("link", name="Back to the threads").click()
    page.locator('[data-filter="paused"]').click()
    page.locator("#scope-all").check()
    page.locator('[data-bulk="resume"]').click()
    expect(page.locator("#bulk-count")).to_contain_text("Resume 1 thread?")
    page.locator("#bulk-run").click()
    expect(page.locator("#bulk-summary")).to_have_text("Done: 1. Skipped: 0.")


def test_export_link_downloads_the_filtered_csv(page, server: ServerProcess) -> None:  # noqa: F811
    ids = _threads(server, 2)
    assert server.post(f"/api/threads/{ids[1]}/stop").status_code == 202
    page.goto("/threads?status=closed")
    with page.expect_download() as info:
        page.locator("#export-csv").click()
    download = info.value
    assert download.suggested_filename.startswith("threads-") and download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["recipient_email"], r["status"], r["close_reason"]) for r in rows] == [
        ("person1@example.com", "closed", "stopped")]
    page.goto(f"/threads/{ids[1]}")
    with page.expect_download() as info:
        page.locator("#history-json").click()
    assert '"close_reason":"stopped"' in Path(info.value.path()).read_text(encoding="utf-8")


def test_search_finds_words_from_reply_bodies(page, server: ServerProcess) -> None:  # noqa: F811
    from playwright.sync_api import expect

    ids = _threads(server, 3)
    for tid in ids[:2]:
        assert server.post(f"/api/threads/{tid}/approve", json={}).status_code == 202
    for tid in ids[:2]:
        server.wait_status(tid, "waiting")
    replies = {ids[0]: "We compared the pricing of three vendors last spring.",
               ids[1]: "Добрый день! Сколько стоит подписка для клиники?"}
    for tid, text in replies.items():
        assert server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": text}).status_code == 202
    for tid in ids[:2]:
        wait_until(lambda t=tid: any(m["direction"] == "in" for m in server.thread(t)["messages"]), what="the reply")
    page.goto("/threads")
    for word, who in (("vendor", "Person 0"), ("подписки", "Person 1")):
        page.get_by_label("Search recipients and mail").fill(word)
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#thread-list tbody tr")).to_have_count(1)
        expect(page.locator("#thread-list tbody")).to_contain_text(who)


def test_sequence_preview_shows_each_follow_up_with_its_date(page, server: ServerProcess,  # noqa: F811
                                                             database_url: str) -> None:
    from playwright.sync_api import expect

    page.goto("/assistants/new")
    page.get_by_label("Assistant name").fill("Clinic pilots")
    page.get_by_label("Sender name").fill("Anna from Acme")
    page.get_by_label("Your offer").fill("Acme, a scheduling tool for clinics")
    page.locator("#f-goal").fill("book a 20-minute demo")
    page.locator("#f-follow_up_count").fill("3")
    page.locator("#f-follow_up_days").fill("2")
    page.evaluate("window.__noReload = true")
    page.locator("#sequence-button").click()
    steps = page.locator("#sequence-steps .sequence-step")
    expect(steps).to_have_count(4)
    expect(steps.nth(0)).to_contain_text("First email")
    expect(steps.nth(3)).to_contain_text("Follow-up 3")
    expect(steps.nth(3)).to_contain_text("Just following up (3)")
    days = [int(steps.nth(i).get_attribute("data-day")) for i in range(4)]
    assert days[0] == 1 and all(b - a >= 2 for a, b in zip(days, days[1:], strict=False)), days
    assert all(steps.nth(i).locator(".when").inner_text().strip() for i in range(4))
    assert page.evaluate("window.__noReload") is True, "htmx swapped the sequence in place"
    assert query(database_url, "SELECT count(*) AS n FROM assistants")[0]["n"] == 0, "the preview stores nothing"
