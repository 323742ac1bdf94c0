"""The `email-assistant` command: serve, worker, migrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

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
    from agent.services import open_services

    async with open_services(settings) as services:
        await services.jobs.run_worker_async(concurrency=settings.worker_concurrency,
                                             additional_context={"services": services},
                                             fetch_job_polling_interval=settings.job_poll_seconds, name="worker")


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
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"email-assistant: configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
