"""The `email-assistant` command: serve, worker, migrate, rotate-key, doctor."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from agent.config import ConfigError, Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in (("EA_HOST", getattr(args, "host", None)), ("EA_PORT", getattr(args, "port", None)))
                 if v is not None}
    settings = Settings(**overrides)
    settings.check()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings


def serve(args: argparse.Namespace) -> None:
    """Run the web server with the worker inside it."""
    import uvicorn

    from server.app import create_app

    settings = _settings(args)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower())


async def _worker(settings: Settings) -> None:
    from runtime.google.pubsub import MailListeners
    from runtime.startup import open_services
    from runtime.worker import run as worker_run

    async with open_services(settings) as services:
        listeners = MailListeners(services)
        await listeners.start()
        try:
            await worker_run(services, name="worker", install_signal_handlers=True)
        finally:
            await listeners.stop()


def worker(args: argparse.Namespace) -> None:
    """Run only the job worker (scale out with several)."""
    asyncio.run(_worker(_settings(args)))


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
    commands = (
        ("worker", worker, "run a job worker only (start several to scale out)"),
        ("migrate", migrate, "apply pending database migrations and exit"),
        ("rotate-key", rotate_key, "re-encrypt stored secrets with the first key of EA_SECRET_KEY"),
        ("doctor", doctor, "check settings, database, model and Google; say what to fix (exit 1 on failure)"),
    )
    for name, func, purpose in commands:
        sub.add_parser(name, help=purpose, description=func.__doc__).set_defaults(func=func)
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
