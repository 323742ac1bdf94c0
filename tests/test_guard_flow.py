"""The draft guard in the running loop: regenerate once, hand over when refused twice, verdicts shown, humans warned."""

from __future__ import annotations

import re

import httpx

from tests.support import ServerProcess, query, wait_until

BAD = {"subject": "Quick idea for [Company]", "body": "Hi [First Name], we guarantee a 50% discount if you sign today."}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _events(server: ServerProcess, tid: str, kind: str) -> list[dict]:
    return [e for e in server.thread(tid)["events"] if e["kind"] == kind]


def _prompt(request: dict) -> str:
    return "\n".join(m["content"] for m in request["messages"] if isinstance(m.get("content"), str))


def test_bad_draft_is_regenerated_with_the_failed_checks_then_sent_clean(server: ServerProcess, model,
                                                                         database_url: str) -> None:
    fake, script = model
    script.drafts = [BAD]
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "gus@example.com")["id"]
    t = server.wait_status(tid, "waiting")
    assert len(t["messages"]) == 1
    sent = t["messages"][0]
    assert "[First Name]" not in sent["text"] and "50%" not in sent["text"] and "[Company]" not in sent["subject"]
    assert sent["text"].startswith("Hello,\n\nThis is the first email draft 2")

    assert script.schemas().count("FirstDraft") == 2
    retry = [r for r in fake.requests if "FirstDraft" in str(r.get("response_format"))][1]
    assert "Your previous draft was refused by our checks" in _prompt(retry)
    assert "- placeholders: Template leftovers" in _prompt(retry) and "- claims:" in _prompt(retry)
    assert BAD["body"] in _prompt(retry), "the refused draft is shown to the model"

    guards = _events(server, tid, "guard")
    assert [g["detail"]["ok"] for g in guards] == [False, True]
    assert {"placeholders", "claims"} <= set(guards[0]["detail"]["failed"])
    assert len(guards[1]["detail"]["verdicts"]) == 9 and guards[1]["detail"]["attempt"] == 2
    assert _events(server, tid, "drafted")[0]["detail"]["attempts"] == 2
    assert query(database_url, "SELECT count(*) AS n FROM sandbox_mail WHERE direction = 'out'")[0]["n"] == 1


def test_draft_bad_twice_is_handed_over_with_its_reasons_and_nothing_is_sent(server: ServerProcess, model,
                                                                             database_url: str) -> None:
    _fake, script = model
    script.drafts = [BAD, BAD]
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "hal@example.com")["id"]
    t = server.wait_status(tid, "needs_human")
    assert t["messages"] == [] and t["pending_draft"] is None
    assert query(database_url, "SELECT count(*) AS n FROM outbox")[0]["n"] == 0
    assert query(database_url, "SELECT count(*) AS n FROM sandbox_mail")[0]["n"] == 0
    escalated = _events(server, tid, "escalated")
    assert len(escalated) == 1 and "failed the checks twice" in escalated[0]["summary"]
    assert "Template leftovers" in escalated[0]["summary"] and "claims" in escalated[0]["summary"]
    guards = _events(server, tid, "guard")
    assert [(g["detail"]["ok"], g["detail"]["blocked"]) for g in guards] == [(False, False), (False, True)]
    assert guards[-1]["detail"]["draft"]["text"].startswith(BAD["body"]), "the refused draft stays visible"
    page = server.client.get(f"/threads/{tid}").text
    assert 'id="blocked-draft"' in page and "Hi [First Name], we guarantee a 50% discount" in page

    # The human writes their own email: checked and warned about, sent as written.
    mine = "Hi Hal, write to me at deals@rival.example instead."
    assert server.post(f"/api/threads/{tid}/reply", json={"text": mine}).status_code == 202
    t = server.wait_messages(tid, 1)
    assert [(m["author"], m["text"]) for m in t["messages"]] == [("human", mine)]
    warned = wait_until(lambda: [g for g in _events(server, tid, "guard") if g["actor"] == "user"],
                        what="the warning on the human's text")
    assert warned[0]["detail"]["ok"] is False and "contacts" in warned[0]["detail"]["failed"]
    assert "deals@rival.example" in warned[0]["summary"]


def test_approval_shows_verdicts_edits_are_warned_kept_and_reach_the_next_prompt(server: ServerProcess, model) -> None:
    fake, _script = model
    persona = server.create_assistant(autonomy="approve_all")
    pid = persona["id"]
    tid = server.create_thread(persona["id"], "ida@example.com")["id"]
    draft = server.wait_status(tid, "awaiting_approval")["pending_draft"]
    assert [v["check"] for v in draft["verdicts"]][:3] == ["placeholders", "contacts", "never_say"]
    assert all(v["ok"] for v in draft["verdicts"])
    assert 'id="draft-verdicts"' in server.client.get(f"/threads/{tid}").text

    mine = "Hi {first_name}, short and sweet as always: may I show you Acme in 15 minutes?\n\nAnna\nAcme"
    r = server.post(f"/api/threads/{tid}/approve", json={"wait_id": draft["wait_id"], "text": mine})
    assert r.status_code == 202, r.text
    t = server.wait_status(tid, "waiting")
    assert t["messages"][0]["text"] == mine, "the human's text is sent as written (warned, never blocked)"
    warned = [g for g in _events(server, tid, "guard") if g["actor"] == "user"]
    assert len(warned) == 1 and warned[0]["detail"]["ok"] is False and "placeholders" in warned[0]["detail"]["failed"]

    kept = server.client.get(f"/api/assistants/{pid}/edits").json()
    assert [(e["kind"], e["original"], e["revised"]) for e in kept] == [("edit", draft["text"], mine)]

    # The next draft of this persona is written with the user's rewrite as an example (seen at the wire).
    tid2 = server.create_thread(persona["id"], "jan@example.com")["id"]
    second = server.wait_status(tid2, "awaiting_approval")["pending_draft"]
    prompt = _prompt([r for r in fake.requests if "FirstDraft" in str(r.get("response_format"))][-1])
    assert "How this user rewrites drafts" in prompt and "short and sweet as always" in prompt

    # Listed on the persona page, deletable there; then the next prompt no longer carries it.
    page = httpx.Client(base_url=server.url, timeout=15)
    fragment = page.get(f"/assistants/{pid}/edits").text
    assert "short and sweet as always" in fragment
    csrf = TOKEN.search(page.get(f"/assistants/{pid}").text).group(1)
    r = page.post(f"/assistants/{pid}/edits/{kept[0]['id']}/delete", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert server.client.get(f"/api/assistants/{pid}/edits").json() == []
    server.post(f"/api/threads/{tid2}/regenerate", json={"wait_id": second["wait_id"], "feedback": "warmer please"})
    wait_until(lambda: (d := server.thread(tid2)["pending_draft"]) and d["wait_id"] != second["wait_id"],
               what="the regenerated draft")
    prompt = _prompt([r for r in fake.requests if "FirstDraft" in str(r.get("response_format"))][-1])
    assert "short and sweet as always" not in prompt
    kept = server.client.get(f"/api/assistants/{pid}/edits").json()
    assert [(e["kind"], e["revised"]) for e in kept] == [("feedback", "warmer please")]
    assert server.client.delete(f"/api/assistants/{pid}/edits/{kept[0]['id']}").status_code == 204
    assert server.client.delete(f"/api/assistants/{pid}/edits/{kept[0]['id']}").status_code == 404


def test_languages_are_stored_shown_and_match_answers_in_the_recipients(server: ServerProcess, model) -> None:
    fake, script = model
    script.drafts = [
        {"subject": "Online booking for your clinic", "body": "Hello Bob,\n\nI noticed that your clinic still books "
         "appointments by phone. Acme lets patients book online in a few clicks, which frees your front desk. "
         "Would a short demo next week be useful?"},
        {"body": "Здравствуйте! Спасибо за вопрос. Стоимость зависит от числа врачей в клинике, и я с радостью "
                 "расскажу подробнее на короткой встрече."},
    ]
    persona = server.create_assistant(autonomy="autonomous", language="match")
    tid = server.create_thread(persona["id"], "bob@example.com", recipient_name="Bob")["id"]
    server.wait_status(tid, "waiting")
    server.post(f"/api/threads/{tid}/sandbox-reply",
                json={"text": "Здравствуйте! Звучит интересно, а сколько это стоит для клиники с тремя врачами?"})
    t = server.wait_messages(tid, 3)
    assert [(m["direction"], m["language"]) for m in t["messages"]] == [("out", "en"), ("in", "ru"), ("out", "ru")]
    reply_prompt = _prompt([r for r in fake.requests if "ReplyDraft" in str(r.get("response_format"))][-1])
    assert "write the whole email in Russian (the recipient's language)" in reply_prompt
    guards = _events(server, tid, "guard")
    assert guards[-1]["detail"]["ok"] is True
    page = server.client.get(f"/threads/{tid}").text
    assert page.count('data-language="ru"') == 2 and page.count('data-language="en"') == 1
