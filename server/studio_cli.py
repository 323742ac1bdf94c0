"""`email-assistant studio`: LangGraph's dev server (langgraph-api, in-memory runtime) on the project's database."""

from __future__ import annotations

import asyncio
import logging
import os
from importlib.util import find_spec
from pathlib import Path

from agent import db
from agent.config import ConfigError, Settings
from runtime import studio as studio_runtime

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent


def dev_server_options(port: int) -> dict:
    """What run_server gets: our graph, the read-only Postgres checkpointer, the refusing auth, the thread sync."""
    runtime_file = Path(studio_runtime.__file__).resolve()
    return {
        "host": "127.0.0.1", "port": port, "reload": False, "open_browser": False, "disable_persistence": True,
        "graphs": {studio_runtime.GRAPH_ID: f"{runtime_file}:graph"},
        "checkpointer": {"backend": "custom", "path": f"{runtime_file}:checkpointer"},
        "auth": {"path": f"{HERE / 'studio.py'}:auth"},
        "http": {"app": f"{HERE / 'studio.py'}:app"},
    }


def run_studio(settings: Settings, *, port: int) -> None:
    """Resolve the database (starting the embedded one if needed), then serve Studio's API until stopped."""
    if find_spec("langgraph_api") is None:
        raise ConfigError("LangGraph Studio needs the optional extra: pip install -e '.[studio]'.")
    # The dev server's own index (threads, runs) lives in memory only: the project's database is the truth. It is
    # read at import, and anything it still writes goes under EA_DATA_DIR, not into the checkout.
    os.environ["LANGGRAPH_DISABLE_FILE_PERSISTENCE"] = "true"
    os.environ.setdefault("LANGGRAPH_NO_VERSION_CHECK", "true")  # no call to PyPI on start
    workdir = settings.data_dir / "studio"
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    from langgraph_api.cli import run_server

    conninfo, embedded = db.resolve_conninfo(settings)
    try:
        asyncio.run(db.apply_migrations(conninfo))
        os.environ[studio_runtime.CONNINFO_ENV] = conninfo
        log.info("LangGraph Studio (read-only) on http://127.0.0.1:%d: open "
                 "https://smith.langchain.com/studio/?baseUrl=http://127.0.0.1:%d", port, port)
        run_server(**dev_server_options(port))
    finally:
        if embedded is not None:
            embedded.stop()
