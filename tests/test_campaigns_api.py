"""The campaigns API against a real server: bulk starts create campaigns, whole-campaign actions, bad input."""

from __future__ import annotations

import uuid

from tests.support import ALWAYS_OPEN, ServerProcess, query, wait_until


def test_bulk_start_is_a_campaign_and_acts_as_one(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="autonomous", **ALWAYS_OPEN)
    alone = server.create_thread(persona["id"], "alone@example.com")
    r = server.post("/api/threads/bulk", json={"assistant_id": persona["id"], "campaign_name": "Clinics in May",
                                               "recipients": [{"email": f"p{i}@example.com"} for i in range(3)]})
    assert r.status_code == 201, r.text
    started = r.json()
    campaign_id = started["campaign_id"]
    assert campaign_id and len(started["created"]) == 3
    owners = query(database_url, "SELECT recipient_email, campaign_id::text AS c FROM threads ORDER BY 1")
    assert [(o["recipient_email"], o["c"]) for o in owners] == [
        ("alone@example.com", None), *((f"p{i}@example.com", campaign_id) for i in range(3))]
    for thread_id in started["created"]:
        server.wait_status(thread_id, "waiting")

    listed = server.client.get("/api/campaigns").json()
    assert [(c["id"], c["name"], c["source"], c["threads"], c["sent"], c["reply_rate"]) for c in listed] == [
        (campaign_id, "Clinics in May", "list", 3, 3, 0.0)]
    detail = server.client.get(f"/api/campaigns/{campaign_id}").json()
    assert (detail["funnel"]["threads"], detail["funnel"]["sent"], detail["funnel"]["queued"]) == (3, 3, 0)
    assert detail["status_counts"] == {"waiting": 3} and detail["queue"]["queued"] == 0
    daily = server.client.get(f"/api/campaigns/{campaign_id}/daily", params={"days": 30}).json()
    assert len(daily) == 30 and daily[-1]["sent"] == 3 and daily[-1]["reply_rate"] == 0.0

    server.post(f"/api/threads/{started['created'][0]}/stop")
    paused = server.post(f"/api/campaigns/{campaign_id}/pause").json()
    assert (paused["done"], paused["skipped"], paused["untouched"]) == (2, 0, 1), paused
    assert {t["outcome"] for t in paused["threads"]} == {"done"}
    assert server.thread(alone["id"])["status"] == "waiting", "a thread outside the campaign is not touched"
    resumed = server.post(f"/api/campaigns/{campaign_id}/resume").json()
    assert (resumed["queued"], resumed["untouched"]) == (2, 1), resumed
    for thread_id in started["created"][1:]:
        server.wait_status(thread_id, "waiting")
    stopped = server.post(f"/api/campaigns/{campaign_id}/stop").json()
    assert stopped["done"] == 2 and stopped["untouched"] == 1
    reasons = query(database_url, "SELECT close_reason FROM threads WHERE campaign_id = %s", (campaign_id,))
    assert [r["close_reason"] for r in reasons] == ["stopped"] * 3
    closed = server.client.get(f"/api/campaigns/{campaign_id}").json()["funnel"]
    assert (closed["closed"], closed["closed_by_reason"]) == (3, {"stopped": 3})


def test_csv_campaign_name_and_bad_input(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant()
    r = server.post("/api/threads/bulk/csv", data={"assistant_id": persona["id"]},
                    files={"file": ("clinics-may.csv", b"email\na@example.com\n", "text/csv")})
    assert r.status_code == 201, r.text
    campaign = server.client.get(f"/api/campaigns/{r.json()['campaign_id']}").json()["campaign"]
    assert (campaign["name"], campaign["source"]) == ("clinics-may", "csv")
    skipped = server.post("/api/threads/bulk", json={"assistant_id": persona["id"],
                                                     "recipients": [{"email": "a@example.com"}]})
    assert skipped.status_code == 201 and skipped.json()["campaign_id"] is None, "nothing started: no campaign"
    assert query(database_url, "SELECT count(*) AS n FROM campaigns")[0]["n"] == 1

    missing = uuid.uuid4()
    for method, path in (("GET", f"/api/campaigns/{missing}"), ("POST", f"/api/campaigns/{missing}/pause"),
                         ("GET", f"/api/campaigns/{missing}/daily")):
        assert server.client.request(method, path).status_code == 404, path
    assert server.client.get("/api/campaigns/not-a-uuid").status_code == 422
    cid = r.json()["campaign_id"]
    assert server.client.get(f"/api/campaigns/{cid}/daily", params={"days": 15}).status_code == 422
    assert server.client.post(f"/api/campaigns/{cid}/archive").status_code in (404, 405)
    bad_name = server.post("/api/threads/bulk", json={"assistant_id": persona["id"], "campaign_name": "a\nb",
                                                      "recipients": [{"email": "z@example.com"}]})
    assert bad_name.status_code == 422
