"""The dashboard in a real browser (Debian's chromium through Playwright) against a real server process.

EA_SCREENSHOTS=1 also saves the main pages under docs/screenshots/ (see README, "Dashboard").
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess, query, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless chromium for the module."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server: ServerProcess):  # noqa: ANN001 - playwright types
    """A fresh browser context (own cookies) on the test server, in English."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 860}, locale="en-US")
    context.set_default_timeout(20_000)
    pg = context.new_page()
    yield pg
    context.close()


def shot(page, name: str, *, full: bool = True) -> None:  # noqa: ANN001
    """Save a screenshot for the README when EA_SCREENSHOTS is set."""
    if os.environ.get("EA_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def test_outreach_from_sign_in_to_hand_back(page, server: ServerProcess, database_url: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    # Sign in: local mode goes straight to the main page, which says mail goes to the sandbox.
    page.goto("/signin")
    assert page.url.rstrip("/") == server.url
    expect(page.get_by_role("heading", name="Needs you now")).to_be_visible()
    expect(page.get_by_text("Sandbox mode.")).to_be_visible()
    expect(page.locator(".mailbox")).to_contain_text("you@localhost")
    expect(page.locator(".mailbox")).to_contain_text("Sandbox")

    # Create a persona: server-side validation puts the error next to the field.
    page.get_by_role("link", name="Assistants").click()
    page.get_by_role("link", name="New assistant").first.click()
    expect(page.get_by_label("Tone")).to_have_value("friendly and concise")
    page.get_by_role("button", name="Create assistant").click()
    expect(page.locator("#e-name")).to_have_text("This field is required.")
    expect(page.locator("#e-offer")).to_have_text("This field is required.")
    page.get_by_label("Assistant name").fill("Clinic pilots")
    page.get_by_label("Sender name").fill("Anna from Acme")
    page.get_by_label("Your offer").fill("Acme, a scheduling tool for clinics")
    page.locator("#f-goal").fill("book a 20-minute demo")
    page.get_by_label("Signature").fill("Anna\nAcme")
    page.get_by_role("button", name="Draft a sample email").click()
    expect(page.locator("#preview-email")).to_contain_text("An idea for you")
    expect(page.locator("#preview-email")).to_contain_text("Jordan Lee")
    assert query(database_url, "SELECT count(*) AS n FROM threads")[0]["n"] == 0, "the preview stores nothing"
    shot(page, "assistant-form")
    page.get_by_role("button", name="Create assistant").click()
    expect(page.locator(".flash")).to_contain_text("Clinic pilots")

    # Start one thread; the first draft appears on the thread page by itself.
    page.get_by_label("Recipient's email").fill("bob@example.com")
    page.get_by_label("Recipient's name").fill("Bob")
    page.get_by_label("Personal context").fill("Met at the clinic fair in May.")
    page.get_by_role("button", name="Start and write the first email").click()
    expect(page.locator("#pending-draft")).to_be_visible()
    expect(page.locator("#thread-status")).to_contain_text("Needs approval")
    shot(page, "thread-draft")

    # Approve an edited draft: the edited text is what is sent.
    body = page.locator("#f-text")
    body.fill("Hi Bob,\n\nEdited by hand: shall we talk on Tuesday?\n\nAnna")
    page.get_by_role("button", name="Approve and send").click()
    first = page.locator(".msg-out").first
    expect(first).to_contain_text("Edited by hand: shall we talk on Tuesday?")
    expect(first).to_contain_text("Assistant sent")
    expect(page.locator("#thread-status")).to_contain_text("Waiting for reply")
    sent = query(database_url, "SELECT text FROM messages WHERE direction = 'out'")
    assert [r["text"] for r in sent] == ["Hi Bob,\n\nEdited by hand: shall we talk on Tuesday?\n\nAnna"]

    # Reply as the recipient; the decision and the answer appear without reloading the page.
    page.evaluate("window.__noReload = true")
    page.get_by_label("Their reply").fill("Sounds good - how much does it cost?")
    page.get_by_role("button", name="Send as the recipient").click()
    expect(page.locator("#notice")).to_contain_text("Reply delivered to the sandbox mailbox")
    decision = page.locator(".msg-in .decision")
    expect(decision.locator(".intent")).to_have_text("Question")
    expect(decision).to_contain_text("90%")
    expect(decision).to_contain_text("The reply says '?'.")
    expect(page.locator(".msg-row")).to_have_count(3)
    expect(page.locator(".msg-row").nth(2)).to_contain_text("Thanks for your reply.")
    assert page.evaluate("window.__noReload") is True, "the reply, the decision and the answer came without a reload"
    times = page.locator(".message time")
    assert times.count() == 3 and all(times.nth(i).inner_text().strip() for i in range(3))
    expect(page.locator("#thread-status")).to_contain_text("Waiting for reply")
    shot(page, "thread")

    # Take over, write the reply yourself (same transport and thread), and hand back.
    page.get_by_role("button", name="Take over").click()
    expect(page.locator("#thread-status")).to_contain_text("Needs you")
    page.get_by_label("Message").fill("Bob, I will call you myself tomorrow.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".msg-row")).to_have_count(4)
    expect(page.locator(".msg-row").nth(3)).to_contain_text("You wrote")
    expect(page.locator(".msg-row").nth(3)).to_contain_text("I will call you myself tomorrow.")
    threads = query(database_url, "SELECT DISTINCT provider_thread_id FROM sandbox_mail WHERE direction = 'out'")
    assert len(threads) == 1, "your reply went out in the same conversation"
    page.get_by_role("button", name="Hand back to the assistant").click()
    expect(page.locator("#thread-status")).to_contain_text("Waiting for reply")
    assert page.evaluate("window.__noReload") is True, "every thread action works in place"
    expect(page.locator(".events")).to_contain_text("You handed the conversation back", use_inner_text=False)

    # The main page counts what happened.
    page.get_by_role("link", name="Home").click()
    expect(page.locator('[data-stat="sent"]')).to_have_text("3")
    expect(page.locator('[data-stat="replies"]')).to_have_text("1")
    expect(page.locator('[data-stat="rate"]')).to_have_text("100%")
    expect(page.locator("#per-assistant")).to_contain_text("Clinic pilots")
    shot(page, "home")
    page.get_by_role("link", name="Threads").click()
    expect(page.locator("#thread-list")).to_contain_text("bob@example.com")
    shot(page, "threads")


def test_csv_upload_with_good_bad_and_duplicate_rows(page, server: ServerProcess, database_url: str,  # noqa: ANN001
                                                     tmp_path: Path) -> None:
    from playwright.sync_api import expect

    persona = server.create_assistant(name="Beta invites")
    server.create_thread(persona["id"], "already@example.com")
    page.goto("/settings")
    page.get_by_label("Email address").fill("blocked@example.com")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#suppression-list")).to_contain_text("blocked@example.com")
    shot(page, "settings")

    csv_file = tmp_path / "people.csv"
    csv_file.write_text("Work Email,Full Name,Company,City\n"
                        "ann@example.com,Ann,Clinic A,Paris\n"
                        "not-an-email,Bad Row,Clinic B,Rome\n"
                        "carl@example.com,Carl,Clinic C,Oslo\n"
                        "ANN@example.com,Ann again,Clinic A,Paris\n"
                        "blocked@example.com,Blocked,Clinic D,Bern\n"
                        "already@example.com,Already,Clinic E,Riga\n")
    page.goto("/threads/import")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("#map_email")).to_have_value("Work Email")
    expect(page.locator("#count-ready")).to_have_text("2")
    expect(page.locator("#count-invalid")).to_have_text("1")
    expect(page.locator("#count-skipped")).to_have_text("3")
    problems = page.locator("#problem-rows")
    expect(problems.locator('[data-row="2"]')).to_contain_text("not-an-email")
    expect(problems.locator('[data-row="4"]')).to_contain_text("Duplicate of row 1")
    expect(problems.locator('[data-row="5"]')).to_contain_text("suppression list")
    expect(problems.locator('[data-row="6"]')).to_contain_text("Already in an open thread")
    assert query(database_url, "SELECT count(*) AS n FROM threads")[0]["n"] == 1, "nothing created before start"
    shot(page, "import-check")

    # Changing the mapping re-checks the rows in place: with no email column, nothing can start.
    page.locator("#map_email").select_option("")
    expect(page.locator("#count-ready")).to_have_text("0")
    page.locator("#map_email").select_option("Work Email")
    expect(page.locator("#count-ready")).to_have_text("2")

    page.locator("#start-import").click()
    expect(page.locator("#import-done")).to_have_text("2 threads started")
    expect(page.locator("#skipped-rows li")).to_have_count(3)
    expect(page.locator("progress")).to_have_attribute("value", "2")
    emails = wait_until(lambda: query(database_url, "SELECT recipient_email, recipient_name, recipient_company, context"
                                                    " FROM threads"
                                                    " WHERE recipient_email <> 'already@example.com'"
                                                    " ORDER BY recipient_email"), what="threads")
    assert [r["recipient_email"] for r in emails] == ["ann@example.com", "carl@example.com"]
    assert (emails[0]["recipient_name"], emails[0]["recipient_company"], emails[0]["context"]) == (
        "Ann", "Clinic A", "City: Paris"), "mapped columns fill the fields, the others become context"


def test_switch_to_russian_and_phone_layout(browser, server: ServerProcess) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    persona = server.create_assistant()
    thread = server.create_thread(persona["id"], "pat@example.com", recipient_name="Pat")
    server.wait_status(thread["id"], "awaiting_approval")
    context = browser.new_context(base_url=server.url, locale="en-US", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"/threads/{thread['id']}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content", "keyboard users can skip the menu"
    expect(page.locator("#pending-draft")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the thread page fits a phone ({width}px)"
    page.goto("/assistants")
    expect(page.get_by_role("heading", name="Assistants", level=1)).to_be_visible()
    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Русский").click()
    expect(page.get_by_role("heading", name="Ассистенты", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Новый ассистент")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "ru"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"no horizontal scrolling on a phone (page is {width}px wide)"
    shot(page, "phone-ru")
    context.close()

    # Without a choice, the browser's language decides.
    context = browser.new_context(base_url=server.url, locale="ru-RU")
    page = context.new_page()
    page.goto("/threads")
    expect(page.get_by_role("heading", name="Переписки", level=1)).to_be_visible()
    context.close()


def test_google_sign_in_shows_only_your_data(browser, google, google_server: ServerProcess) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    from tests.support import ALICE, CAROL, PERSONA

    def signed_in(email: str):  # noqa: ANN202
        context = browser.new_context(base_url=google_server.url, locale="en-US")
        page = context.new_page()
        page.goto("/")
        assert page.url.endswith("/signin"), "signed-out visitors land on the sign-in page"
        expect(page.get_by_text("Send email as you")).to_be_visible()
        google.oidc.next_login(email)
        page.get_by_role("link", name="Sign in with Google").click()
        expect(page.get_by_role("heading", name="Needs you now")).to_be_visible()
        expect(page.locator(".mailbox")).to_contain_text(email)
        expect(page.locator(".mailbox")).to_contain_text("Connected")
        return context, page

    alice, page = signed_in(ALICE)
    shot(page, "home-google")
    # The API takes the page's CSRF token (a bare session cookie cannot write: tests/test_csrf.py).
    token = {"X-CSRF-Token": page.locator('meta[name="csrf-token"]').get_attribute("content")}
    r = page.request.post("/api/assistants", data={**PERSONA, "name": "Alice's persona"}, headers=token)
    assert r.status == 201, r.text()
    persona = r.json()
    r = page.request.post("/api/threads", data={"assistant_id": persona["id"], "recipient_email": "zed@example.com"},
                          headers=token)
    assert r.status == 201, r.text()
    thread_id = r.json()["id"]
    page.goto(f"/threads/{thread_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("zed@example.com")

    carol, other = signed_in(CAROL)
    other.goto("/threads")
    expect(other.get_by_text("No threads yet.")).to_be_visible()
    for path in (f"/threads/{thread_id}", f"/assistants/{persona['id']}"):
        response = other.goto(path)
        assert response is not None and response.status == 404, path
        expect(other.get_by_role("heading", name="Not found")).to_be_visible()
    response = other.request.post(f"/threads/{thread_id}/stop", form={"csrf_token": "forged"})
    assert response.status == 403, "a form without this session's token is refused"
    carol.close()

    page.get_by_role("link", name="Log out").click()
    expect(page.get_by_role("link", name="Sign in with Google")).to_be_visible()
    poll = page.request.get(f"/threads/{thread_id}/live", headers={"HX-Request": "true"}, max_redirects=0)
    assert poll.headers.get("hx-redirect") == "/signin", "a signed-out poll sends the page to sign-in"
    assert page.request.get(f"/threads/{thread_id}", max_redirects=0).status == 303
    alice.close()
