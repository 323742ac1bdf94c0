"""`email-assistant studio`: LangGraph's dev server on the project's database, through its HTTP API, read-only."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import CliProcess, ServerProcess, clean_env, free_port, query, wait_until

pytest.importorskip("langgraph_api", reason="the `studio` extra is not installed")
GRAPH = "outreach_thread"


def test_studio_shows_real_threads_read_only(server: ServerProcess, server_env: dict[str, str], database_url: str,
                                             tmp_path: Path) -> None:
    persona = server.create_assistant(autonomy="autonomous", name="Clinic invites")
    tid = server.create_thread(persona["id"], "dana@example.com", recipient_name="Dana")["id"]
    server.wait_status(tid, "waiting", timeout=60)
    # A reply and its answer: a second run, so the history has more than one checkpoint (runs keep one each,
    # durability="exit").
    r = server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "Sounds good, what does it cost?"})
    assert r.status_code == 202, r.text
    wait_until(lambda: len((t := server.thread(tid))["messages"]) == 3 and t["status"] == "waiting",
               timeout=60, what="the answer to the reply")
    checkpoints = query(database_url, "SELECT count(*) AS n FROM checkpoints")[0]["n"]

    port = free_port()
    studio = CliProcess({"DATABASE_URL": database_url, "EA_DATA_DIR": server_env["EA_DATA_DIR"],
                         "LANGSMITH_TRACING": "false"}, log_path=tmp_path / "studio.log")
    studio.name = "the studio dev server"
    studio.spawn(["studio", "--port", str(port)], clean_env(studio.env))
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def ready() -> bool:
        studio.check_running()
        try:
            return api.get("/ok").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=90, what=f"the studio dev server (log: {studio.log_path})")
        [assistant] = api.post("/assistants/search", json={"graph_id": GRAPH}).json()
        schemas = api.get(f"/assistants/{assistant['assistant_id']}/schemas")
        assert schemas.status_code == 200, schemas.text
        body = schemas.json()
        assert "thread_id" in body["state_schema"]["properties"]
        assert body["context_schema"]["title"] == "StudioContext"

        # The real thread is listed, with its metadata, for the graph's assistant.
        found = api.post("/threads/search", json={"metadata": {"assistant_id": assistant["assistant_id"]}}).json()
        assert [t["thread_id"] for t in found] == [tid]
        meta = found[0]["metadata"]
        assert (meta["recipient"], meta["assistant"], meta["status"]) == ("dana@example.com", "Clinic invites",
                                                                          "waiting")

        # Its state and history come from the project's checkpoints.
        state = api.get(f"/threads/{tid}/state")
        assert state.status_code == 200, state.text
        state = state.json()
        assert state["values"]["thread_id"] == tid and state["next"] == ["wait"]
        assert state["tasks"][0]["interrupts"][0]["value"]["kind"] == "reply"
        history = api.post(f"/threads/{tid}/history", json={"limit": 50})
        assert history.status_code == 200, history.text
        newest, *older = history.json()
        assert older, "one checkpoint per run: the first email's and the answer's"
        assert newest["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
        assert newest["parent_checkpoint"]["checkpoint_id"] == older[0]["checkpoint"]["checkpoint_id"]

        # Runs and state edits are refused with the reason; nothing was written.
        run = api.post(f"/threads/{tid}/runs", json={"assistant_id": assistant["assistant_id"], "input": {}})
        assert run.status_code == 403 and "bypass the outbox" in run.text, run.text
        edit = api.post(f"/threads/{tid}/state", json={"values": {"thread_id": "x"}})
        assert edit.status_code == 403 and "read-only" in edit.text, edit.text
        new = api.post("/threads", json={})
        assert new.status_code == 403, new.text
        assert query(database_url, "SELECT count(*) AS n FROM checkpoints")[0]["n"] == checkpoints
        assert server.thread(tid)["status"] == "waiting"
    finally:
        studio.stop()


async def test_the_checkpointer_refuses_writes_on_read_only_connections(database_url: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    from runtime import studio

    monkeypatch.setenv(studio.CONNINFO_ENV, database_url)
    async with studio.checkpointer() as saver:
        assert await saver.aget_tuple({"configurable": {"thread_id": "00000000-0000-0000-0000-000000000000"}}) is None
        with pytest.raises(studio.StudioReadOnly, match="bypass the outbox"):
            await saver.aput({"configurable": {"thread_id": "t"}}, {}, {}, {})
        with pytest.raises(studio.StudioReadOnly):
            await saver.adelete_thread("t")
        async with saver.conn.connection() as conn:
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                await conn.execute("DELETE FROM checkpoints")
