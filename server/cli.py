"""The `email-assistant` command: serve, worker, migrate, rotate-key, doctor, eval."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from agent.config import ConfigError, Settings


def _settings(args: argparse.Namespace) -> Settings:
    given = (("EA_HOST", "host"), ("EA_PORT", "port"), ("EA_WORKER_METRICS_PORT", "metrics_port"))
    overrides = {k: v for k, v in ((k, getattr(args, name, None)) for k, name in given) if v is not None}
    settings = Settings(**overrides)
    settings.check()
    _configure_logging(settings)
    return settings


def _configure_logging(settings: Settings) -> None:
    from agent import logs
    from agent.keyring import KeyRing

    secrets = settings.secret_values()
    if settings.secret_keys():  # the session secret derives from the first key; a malformed key fails here
        secrets.append(KeyRing(settings.secret_keys()).session_secret)
    logs.configure(level=settings.log_level, fmt=settings.log_format, secrets=secrets)


def _freeze_startup_objects() -> None:
    """Move what start-up built (modules, classes, clients) out of the collector's reach once it is built.

    A full collection otherwise walks those ~200,000 long-lived objects each time: in a worker's 200-reply burst the
    collector's own time went from 1.77 to 1.07 s of 24 s (gc.callbacks, process time). No collection first: it
    would add a tenth of a second to every start, to free the little garbage start-up leaves once.
    """
    gc.freeze()


def _use_uvloop(settings: Settings) -> bool:
    """Whether `serve` and `worker` run on uvloop (EA_EVENT_LOOP; auto: when it is installed)."""
    if settings.event_loop == "asyncio":
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if settings.event_loop == "uvloop":
            raise ConfigError("EA_EVENT_LOOP=uvloop, but uvloop is not installed (pip install uvloop).") from None
        return False
    return True


def _loop_name() -> str:
    """The running event loop's kind, as logged at start: "uvloop" or "asyncio"."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def serve(args: argparse.Namespace) -> None:
    """Run the web server with the worker inside it."""
    settings = _settings(args)  # logging first: importing the app already logs (and warns)
    import uvicorn

    from server.app import create_app

    app = create_app(settings)
    _freeze_startup_objects()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                log_config=None, loop="uvloop" if _use_uvloop(settings) else "asyncio")


async def _worker(settings: Settings, metrics_port: int) -> None:
    from runtime.google.pubsub import MailListeners
    from runtime.startup import open_services
    from runtime.worker import run as worker_run
    from server.metrics import serve_worker_metrics

    logging.getLogger("email_assistant").info("worker event loop: %s", _loop_name())
    async with open_services(settings) as services:
        listeners = MailListeners(services)
        await listeners.start()
        _freeze_startup_objects()
        scrape = asyncio.create_task(serve_worker_metrics(settings, port=metrics_port)) if metrics_port else None
        try:
            await worker_run(services, name="worker", install_signal_handlers=True)
        finally:
            if scrape is not None:
                scrape.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scrape
            await listeners.stop()


def worker(args: argparse.Namespace) -> None:
    """Run only the job worker (scale out with several); --metrics-port serves its own /metrics."""
    settings = _settings(args)
    factory = None
    if _use_uvloop(settings):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_worker(settings, settings.worker_metrics_port))  # --metrics-port overrides it in _settings


async def _migrate(settings: Settings) -> list[int]:
    from agent import db

    conninfo, embedded = db.resolve_conninfo(settings)
    try:
        return await db.apply_migrations(conninfo)
    finally:
        if embedded is not None:
            embedded.stop()


def migrate(args: argparse.Namespace) -> None:
    """Apply database migrations and exit."""
    applied = asyncio.run(_migrate(_settings(args)))
    logging.getLogger("email_assistant").info("migrations applied: %s", applied or "none pending")


async def _rotate_key(settings: Settings) -> int:
    from agent import db
    from agent.google.mailboxes import rotate_secrets
    from agent.keyring import load_keyring

    keyring = load_keyring(settings)
    conninfo, embedded = db.resolve_conninfo(settings)
    try:
        await db.apply_migrations(conninfo)
        async with await psycopg.AsyncConnection.connect(conninfo, row_factory=dict_row) as conn:
            async with conn.transaction():
                return await rotate_secrets(conn, keyring=keyring)
    finally:
        if embedded is not None:
            embedded.stop()


def rotate_key(args: argparse.Namespace) -> None:
    """Re-encrypt every stored secret with the first key of EA_SECRET_KEY (then drop the old key)."""
    count = asyncio.run(_rotate_key(_settings(args)))
    logging.getLogger("email_assistant").info(
        "re-encrypted %d stored secret(s) with the first key of EA_SECRET_KEY; older keys can now be removed", count)


def doctor(args: argparse.Namespace) -> None:
    """Check the settings, the database, the model and Google; exit 1 when a check fails."""
    from server.doctor import run_doctor

    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(run_doctor(sys.stdout)))


def studio(args: argparse.Namespace) -> None:
    """Open LangGraph Studio's dev server on this project's database, read-only (needs the `studio` extra)."""
    from server.studio_cli import run_studio

    run_studio(_settings(args), port=args.studio_port or 2024)


def evaluate(args: argparse.Namespace) -> None:
    """Run a labelled file (replies or first-email briefs) through the real decision path and the configured model."""
    from runtime.evaluate import run

    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(run(Settings(), dataset=Path(args.dataset), out=Path(args.out) if args.out else None,
                             limit=args.limit, stream=sys.stdout)))


TRACING_PREFIXES = ("LANGSMITH_", "LANGCHAIN_")


def export_tracing_env(env_file: str | Path | None = None) -> list[str]:
    """Copy LANGSMITH_*/LANGCHAIN_* values of the .env file into os.environ, where LangSmith reads them.

    Settings reads .env itself but leaves os.environ alone; a variable already in the environment wins.
    """
    from dotenv import dotenv_values

    path = Path(env_file if env_file is not None else str(Settings.model_config.get("env_file") or ".env"))
    if not path.is_file():
        return []
    exported = []
    for key, value in dotenv_values(path).items():
        if key.upper().startswith(TRACING_PREFIXES) and value is not None and key not in os.environ:
            os.environ[key] = value
            exported.append(key)
    return exported


def package_version() -> str:
    """The installed distribution's version."""
    try:
        return version("email-assistant")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The command line: every subcommand with its purpose line."""
    parser = argparse.ArgumentParser(prog="email-assistant", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p_serve = sub.add_parser("serve", help="run the web server (and the worker, unless EA_WORKER_IN_PROCESS=false)",
                             description=serve.__doc__)
    p_serve.add_argument("--host", help="bind address (overrides EA_HOST)")
    p_serve.add_argument("--port", type=int, help="port (overrides EA_PORT)")
    p_serve.set_defaults(func=serve)
    p_worker = sub.add_parser("worker", help="run a job worker only (start several to scale out)",
                              description=worker.__doc__)
    p_worker.add_argument("--metrics-port", type=int,
                          help="serve this worker's /metrics on this port (overrides EA_WORKER_METRICS_PORT)")
    p_worker.set_defaults(func=worker)
    p_studio = sub.add_parser("studio", help="LangGraph Studio on the real threads, read-only (extra `studio`)",
                              description=studio.__doc__)
    p_studio.add_argument("--port", dest="studio_port", type=int, help="the dev server's port (default 2024)")
    p_studio.set_defaults(func=studio)
    commands = (
        ("migrate", migrate, "apply pending database migrations and exit"),
        ("rotate-key", rotate_key, "re-encrypt stored secrets with the first key of EA_SECRET_KEY"),
        ("doctor", doctor, "check settings, database, model and Google; say what to fix (exit 1 on failure)"),
    )
    for name, func, purpose in commands:
        sub.add_parser(name, help=purpose, description=func.__doc__).set_defaults(func=func)
    p_eval = sub.add_parser("eval", help="measure the configured model on a labelled file (docs/evaluation.md)",
                            description=evaluate.__doc__)
    p_eval.add_argument("--dataset", required=True, help="a JSONL file of labelled replies or first-email briefs")
    p_eval.add_argument("--out", help="folder to write results.json to")
    p_eval.add_argument("--limit", type=int, help="only the first N items")
    p_eval.set_defaults(func=evaluate)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = build_parser().parse_args(argv)
    export_tracing_env()
    try:
        args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"email-assistant: configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
