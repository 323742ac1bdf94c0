"""A campaign in Debian's chromium: import a CSV, open the campaign, read its funnel and chart, pause it."""

from __future__ import annotations

from pathlib import Path

from tests.support import ALWAYS_OPEN, ServerProcess, query, wait_until
from tests.test_dashboard_browser import browser, page, pytestmark, shot  # noqa: F401 - fixtures and the skip mark


def test_import_opens_a_campaign_with_funnel_chart_and_pause(page, server: ServerProcess, database_url: str,  # noqa: ANN001
                                                             tmp_path: Path) -> None:
    from playwright.sync_api import expect

    persona = server.create_assistant(name="Clinic pilots", autonomy="autonomous", **ALWAYS_OPEN)
    csv_file = tmp_path / "clinics-may.csv"
    csv_file.write_text("email,name\nann@example.com,Ann\ncarl@example.com,Carl\nnot-an-email,Bad\n")
    page.goto(f"/threads/import?assistant={persona['id']}")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("#count-ready")).to_have_text("2")
    expect(page.get_by_label("Campaign name")).to_have_value("clinics-may")
    page.get_by_label("Campaign name").fill("May clinics")
    page.locator("#start-import").click()
    expect(page.locator("#import-done")).to_have_text("2 threads started")
    wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM messages WHERE direction = 'out'")[0]["n"] == 2,
               what="both first emails sent")
    page.locator("#import-campaign").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("May clinics")

    funnel = page.locator("#funnel")
    for stage, count in (("threads", 2), ("queued", 0), ("sent", 2), ("replied", 0), ("closed", 0)):
        expect(funnel.locator(f'[data-stage="{stage}"] .funnel-count')).to_have_text(str(count))
    expect(page.locator('[data-stat="rate"]')).to_have_text("0%")
    chart = page.locator("svg.chart")
    expect(chart).to_have_attribute("role", "img")
    expect(chart.locator("title").first).to_have_text("Emails sent, replies and reply rate per day, last 7 days")
    expect(chart.locator("rect.bar-sent")).to_have_count(7)
    expect(chart.locator("rect.bar-replies")).to_have_count(7)
    expect(chart.locator("circle.point")).to_have_count(1)
    expect(chart.locator("rect.bar-sent").last).to_have_attribute("data-value", "2")
    page.get_by_role("link", name="30 days").click()
    expect(page.locator("svg.chart rect.bar-sent")).to_have_count(30)
    expect(page.locator("#campaign-threads tbody tr")).to_have_count(2)
    shot(page, "campaign")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Pause all").click()
    report = page.locator("#campaign-report")
    expect(report).to_contain_text("Paused: 2 threads")
    expect(report.locator('li[data-outcome="done"]')).to_have_count(2)
    expect(page.locator('[data-filter="paused"] .count')).to_have_text("2")
    statuses = query(database_url, "SELECT DISTINCT status FROM threads")
    assert [s["status"] for s in statuses] == ["paused"]

    page.get_by_role("link", name="Open in the thread list").click()
    expect(page.locator("#campaign-filter")).to_be_visible()
    expect(page.locator("#thread-list tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Campaigns").click()
    expect(page.locator("#campaign-list")).to_contain_text("May clinics")
    page.get_by_role("link", name="Home").click()
    expect(page.locator("svg.chart rect.bar-sent")).to_have_count(7)
    page.goto(f"/assistants/{persona['id']}?days=90")
    expect(page.locator("svg.chart rect.bar-sent")).to_have_count(90)
