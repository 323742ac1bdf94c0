"""The `email-assistant` command: serve, worker, migrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

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


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="email-assistant", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the server (and the worker, unless EA_WORKER_IN_PROCESS=false)")
    p_serve.add_argument("--host", help="bind address (overrides EA_HOST)")
    p_serve.add_argument("--port", type=int, help="port (overrides EA_PORT)")
    p_serve.set_defaults(func=serve)
    sub.add_parser("worker", help="run a job worker only").set_defaults(func=worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=migrate)
    sub.add_parser("rotate-key", help="re-encrypt stored secrets with the first key of EA_SECRET_KEY").set_defaults(
        func=rotate_key)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"email-assistant: configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
