"""Scale-out: 2 servers and 3 workers on one Postgres; a burst of replies; no thread is ever run by two processes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

from tests.processes import WorkerProcess, json_lines
from tests.support import ServerProcess, query, queue_follow_up, wait_until

THREADS = 12
# The test's own trace: every checkpoint write, by which process (PGAPPNAME), and which process held the thread's
# advisory lock (the runner's `thread:<id>` lock) at that moment.
TRACE = """
CREATE TABLE run_trace (thread_id text, writer text, holder text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION trace_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO run_trace (thread_id, writer, holder)
  SELECT NEW.thread_id, current_setting('application_name'),
         (SELECT string_agg(a.application_name, ',') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted
             AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('thread:' || NEW.thread_id, 0));
  RETURN NEW;
END $$;
CREATE TRIGGER trace_checkpoint AFTER INSERT ON checkpoints FOR EACH ROW EXECUTE FUNCTION trace_checkpoint();
"""


def test_two_servers_three_workers_burst_of_replies(server_env: dict[str, str], database_url: str,
                                                     tmp_path: Path) -> None:
    query(database_url, TRACE)
    env = {**server_env, "EA_WORKER_IN_PROCESS": "false", "EA_LOG_FORMAT": "json", "EA_WORKER_CONCURRENCY": "2"}
    servers = [ServerProcess({**env, "PGAPPNAME": f"server-{i}"}, log_path=tmp_path / f"server-{i}.log")
               for i in (1, 2)]
    workers = [WorkerProcess({**env, "PGAPPNAME": f"worker-{i}"}, log_path=tmp_path / f"worker-{i}.log")
               for i in (1, 2, 3)]
    try:
        for proc in (*servers, *workers):
            proc.start()
        persona = servers[0].create_assistant(autonomy="autonomous")
        tids = [servers[i % 2].create_thread(persona["id"], f"person{i}@example.com")["id"] for i in range(THREADS)]
        for tid in tids:
            servers[1].wait_status(tid, "waiting", timeout=90)
        # The burst: every thread gets a reply, through either server; half also get their follow-up fired for the
        # same wait at the same moment (queued as the timer tick queues it: the tick's own 5 s period would let the
        # reply win every time), so two jobs race for the same thread on different workers.
        waits = {r["id"]: r["wait_id"] for r in query(database_url, "SELECT id::text, wait_id FROM threads")}
        for i, tid in enumerate(tids):
            r = servers[i % 2].post(f"/api/threads/{tid}/sandbox-reply", json={"text": f"Interested, price for {i}?"})
            assert r.status_code == 202, r.text
            if i % 2:
                queue_follow_up(database_url, tid, waits[tid])
        wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM outbox WHERE status = 'sent'")[0]["n"]
                   >= 2 * THREADS, timeout=90, what="every reply answered")
        wait_until(lambda: not query(database_url, "SELECT id FROM procrastinate_jobs WHERE status = 'doing'"
                                     " OR (status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now()))"),
                   timeout=60, what="the queue drained")
    finally:
        pids = {proc.proc.pid: name for proc, name in zip((*servers, *workers), ("server-1", "server-2", "worker-1",
                "worker-2", "worker-3"), strict=True) if proc.proc is not None}
        for proc in (*workers, *servers):
            proc.stop()

    # Every reply answered exactly once, in its own thread.
    for tid in tids:
        rows = query(database_url, "SELECT direction FROM messages WHERE thread_id = %s ORDER BY at", (tid,))
        assert [r["direction"] for r in rows] == ["out", "in", "out"], (tid, rows)
    sent = query(database_url, "SELECT kind, count(*) AS n FROM outbox WHERE status = 'sent' GROUP BY kind")
    assert {r["kind"]: r["n"] for r in sent} == {"first": THREADS, "reply": THREADS}
    assert query(database_url, "SELECT count(*) AS n FROM sandbox_mail WHERE direction = 'out'")[0]["n"] == 2 * THREADS

    # Every job, from the processes' own logs: (thread, process, start, end).
    jobs = []
    for path in (*[s.log_path for s in servers], *[w.log_path for w in workers]):
        for e in json_lines(path.read_text(errors="replace")):
            if e["message"].startswith("job done:") and e.get("thread_id"):
                jobs.append({"thread": e["thread_id"], "process": pids[e["pid"]], "outcome": e["outcome"],
                             "start": datetime.fromisoformat(e["started_at"]),
                             "end": datetime.fromisoformat(e["ended_at"])})
    assert {j["outcome"] for j in jobs} == {"succeeded"}
    assert {j["process"] for j in jobs} <= {"worker-1", "worker-2", "worker-3"}, "the servers run no jobs"
    assert len({j["process"] for j in jobs}) >= 2, "the work was spread over several workers"
    assert {j["thread"] for j in jobs} == set(tids)

    # Every graph step was written by the process holding the thread's lock, and each process's runs of a thread
    # (its checkpoint writes within one of its jobs) never overlap another process's runs of the same thread.
    trace = query(database_url, "SELECT thread_id, writer, holder, at FROM run_trace ORDER BY at")
    assert trace and {t["thread_id"] for t in trace} == set(tids)
    wrong = [t for t in trace if t["holder"] != t["writer"]]
    assert not wrong, f"checkpoint writes outside the writer's thread lock: {wrong[:5]}"
    runs: dict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for j in jobs:
        writes = [t["at"] for t in trace if t["thread_id"] == j["thread"] and t["writer"] == j["process"]
                  and j["start"] <= t["at"] <= j["end"]]
        if writes:
            runs[j["thread"]].append((min(writes), max(writes), j["process"]))
    assert sum(len(r) for r in runs.values()) >= 2 * THREADS, "each thread ran at least twice (first email, answer)"
    for tid, intervals in runs.items():
        intervals.sort()
        for (_s1, e1, p1), (s2, _e2, p2) in zip(intervals, intervals[1:], strict=False):
            assert p1 == p2 or e1 < s2, f"thread {tid} ran in {p1} and {p2} at once"
    assert len({p for r in runs.values() for _s, _e, p in r}) >= 2
