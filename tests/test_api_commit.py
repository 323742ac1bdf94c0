"""A success answer means the write is committed: the row is readable the moment the response arrives."""

from __future__ import annotations

from tests.support import PERSONA, ServerProcess, query

SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON assistants DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION slow_commit();
"""


def test_created_rows_are_committed_before_the_answer(server: ServerProcess, database_url: str) -> None:
    query(database_url, SLOW_COMMIT)  # each COMMIT now takes 0.5 s: an answer sent before it would be caught
    for i in range(3):
        r = server.client.post("/api/assistants", json={**PERSONA, "name": f"p{i}"})
        assert r.status_code == 201
        assert query(database_url, "SELECT name FROM assistants WHERE id = %s", (r.json()["id"],)) == [{"name": f"p{i}"}]


def test_cross_site_requests_and_rebound_hosts_are_refused(server: ServerProcess, database_url: str) -> None:
    evil = server.client.post("/api/assistants", json=PERSONA, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and evil.json()["detail"] == "Cross-site request refused."
    csv = server.client.post("/api/suppressions/import", headers={"Origin": "null"},
                             files={"file": ("x.csv", b"email\nvictim@example.com\n", "text/csv")})
    assert csv.status_code == 403
    ours = server.client.post("/api/assistants", json=PERSONA, headers={"Origin": server.url})
    assert ours.status_code == 201
    rebound = server.client.get("/api/assistants", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400
    assert query(database_url, "SELECT count(*) AS n FROM suppressions")[0]["n"] == 0
    assert query(database_url, "SELECT count(*) AS n FROM assistants")[0]["n"] == 1
