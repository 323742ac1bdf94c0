"""`email-assistant doctor`: one line per check (ok / warn / fail), each saying what to fix."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

import psycopg
from psycopg import conninfo as pg_conninfo
from pydantic import ValidationError

from agent import db
from agent.config import PLACEHOLDER_SECRETS, ConfigError, Settings, is_loopback
from agent.keyring import KeyRing
from agent.llm import HOW_TO_CONFIGURE, LanguageModel

MODEL_TIMEOUT_SECONDS = 15.0
HTTP_TIMEOUT_SECONDS = 5.0
TOPIC = re.compile(r"projects/([^/]+)/topics/[^/]+")
SUBSCRIPTION = re.compile(r"projects/([^/]+)/subscriptions/[^/]+")


@dataclass(frozen=True)
class Check:
    """One result line."""

    status: str  # "ok", "warn" or "fail"
    name: str
    message: str


def check_settings(settings: Settings) -> list[Check]:
    """The safety rules of Settings.check, the secret key, the bind address and the base URL."""
    results: list[Check] = []
    try:
        settings.check()
    except ConfigError as exc:
        results.append(Check("fail", "settings", str(exc)))
    else:
        results.append(Check("ok", "settings", f"{'local' if settings.local_mode else 'Google'} mode"))
    keys = settings.secret_keys()
    if any(k.lower() in PLACEHOLDER_SECRETS for k in keys):
        results.append(Check("fail", "secret", "EA_SECRET_KEY holds a placeholder: set a generated Fernet key."))
    elif keys:
        try:
            KeyRing(keys)
            results.append(Check("ok", "secret", f"EA_SECRET_KEY holds {len(keys)} valid key(s)"))
        except ConfigError as exc:
            results.append(Check("fail", "secret", str(exc)))
    elif settings.local_mode:
        results.append(Check("ok", "secret", f"local key kept in {settings.data_dir}"))
    results.append(_check_bind(settings))
    results.append(_check_base_url(settings))
    return results


def _check_bind(settings: Settings) -> Check:
    if not settings.local_mode:
        if settings.local_allowed_clients:
            return Check("warn", "bind", "EA_LOCAL_ALLOWED_CLIENTS only applies in local mode; remove it.")
        return Check("ok", "bind", f"{settings.host}:{settings.port}, Google sign-in required")
    if is_loopback(settings.host):
        return Check("ok", "bind", f"local mode on loopback {settings.host}:{settings.port}")
    try:
        networks = settings.local_client_networks()
    except ConfigError as exc:
        return Check("fail", "bind", str(exc))
    if not networks:
        return Check("fail", "bind", f"local mode refuses host {settings.host}: use 127.0.0.1, or set "
                                     "EA_LOCAL_ALLOWED_CLIENTS to the container network's subnet.")
    listed = ", ".join(str(n) for n in networks)
    return Check("ok", "bind", f"local mode on {settings.host}:{settings.port}, answering only loopback and {listed}")


def _check_base_url(settings: Settings) -> Check:
    url = urlsplit(settings.base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        return Check("fail", "base url", f"EA_BASE_URL {settings.base_url!r} must be http(s)://host[:port].")
    if url.hostname in ("0.0.0.0", "::"):
        return Check("fail", "base url", "EA_BASE_URL names a wildcard address: set the URL browsers use.")
    if not settings.local_mode and is_loopback(url.hostname):
        return Check("warn", "base url", f"{settings.base_url} is loopback: Google's sign-in redirect and "
                                         "unsubscribe links need the public URL in EA_BASE_URL.")
    if not settings.local_mode and url.scheme != "https":
        return Check("warn", "base url", f"{settings.base_url} is not https: put TLS in front and set EA_BASE_URL.")
    return Check("ok", "base url", settings.base_url)


def _safe_target(conninfo: str) -> str:
    parts = pg_conninfo.conninfo_to_dict(conninfo)
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/{parts.get('dbname') or '?'}"


async def check_database(settings: Settings) -> list[Check]:
    """Connect, then compare the applied migrations with the shipped ones."""
    embedded = None
    try:
        try:
            conninfo, embedded = db.resolve_conninfo(settings)
        except Exception as exc:  # reported as a failed check, the doctor goes on
            return [Check("fail", "database", f"embedded PostgreSQL did not start ({exc.__class__.__name__}: "
                                              f"{str(exc)[:200]}); set DATABASE_URL or check EA_DATA_DIR.")]
        target = "embedded PostgreSQL" if embedded else _safe_target(conninfo)
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, connect_timeout=5, autocommit=True)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            return [Check("fail", "database", f"cannot connect to {target} ({first[:200]}): check DATABASE_URL "
                                              "and that PostgreSQL runs.")]
        async with conn:
            cur = await conn.execute("SELECT current_setting('server_version'), to_regclass('schema_migrations'), "
                                     "to_regclass('procrastinate_jobs'), to_regclass('checkpoints')")
            server_version, migrations_table, jobs_table, checkpoints_table = await cur.fetchone()
            applied: set[int] = set()
            if migrations_table is not None:
                cur = await conn.execute("SELECT version FROM schema_migrations")
                applied = {row[0] for row in await cur.fetchall()}
        results = [Check("ok", "database", f"connected to {target} (PostgreSQL {server_version})")]
        known = [number for number, _, _ in db.migration_files()]
        pending = [n for n in known if n not in applied]
        unknown = sorted(applied - set(known))
        if unknown:
            results.append(Check("fail", "migrations", f"the database has migration(s) {unknown} this version does "
                                                       "not know: upgrade Email Assistant."))
        elif pending or jobs_table is None or checkpoints_table is None:
            what = f"{len(pending)} of {len(known)} pending" if pending else "job or checkpoint tables missing"
            results.append(Check("warn", "migrations", f"{what}: run `email-assistant migrate` (the server also "
                                                       "applies them when it starts)."))
        else:
            results.append(Check("ok", "migrations", f"all {len(known)} applied"))
        return results
    finally:
        if embedded is not None:
            embedded.stop()


async def check_model(settings: Settings) -> Check:
    """One tiny completion (max_tokens=1) through the project's model client, without retries."""
    if not settings.llm_configured:
        return Check("warn", "model", HOW_TO_CONFIGURE)
    quick = settings.model_copy(update={"llm_timeout_seconds": MODEL_TIMEOUT_SECONDS, "llm_max_retries": 0})
    where = settings.openai_base_url or "OpenAI"
    chat = LanguageModel(quick)._client().bind(max_tokens=1)
    try:
        await asyncio.wait_for(chat.ainvoke([("human", "Reply with OK.")]), MODEL_TIMEOUT_SECONDS + 1)
    except Exception as exc:  # any client or network failure is the finding
        return Check("fail", "model", f"{settings.llm_model} at {where} failed ({exc.__class__.__name__}: "
                                      f"{str(exc)[:200]}): check OPENAI_API_KEY, OPENAI_BASE_URL and EA_LLM_MODEL.")
    return Check("ok", "model", f"{settings.llm_model} at {where} answered")


async def check_google(settings: Settings) -> list[Check]:
    """Client id/secret pair, Pub/Sub consistency, and the discovery document."""
    has_id, has_secret = bool(settings.google_client_id), bool(settings.google_client_secret)
    if has_id != has_secret:
        missing = "GOOGLE_CLIENT_SECRET" if has_id else "GOOGLE_CLIENT_ID"
        return [Check("fail", "google", f"{missing} is unset: set both GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, "
                                        "or neither for local mode.")]
    if not has_id:
        pubsub = [name for name, value in (("EA_PUBSUB_TOPIC", settings.pubsub_topic),
                                           ("EA_PUBSUB_SUBSCRIPTION", settings.pubsub_subscription)) if value]
        if pubsub:
            return [Check("warn", "google", f"{', '.join(pubsub)} set but Google is not configured: ignored.")]
        return [Check("ok", "google", "not configured: local mode with the sandbox mailbox")]
    return [*_check_pubsub(settings), await _check_discovery(settings)]


def _check_pubsub(settings: Settings) -> list[Check]:
    topic, subscription = settings.pubsub_topic, settings.pubsub_subscription
    push = (settings.pubsub_push_audience, settings.pubsub_push_service_account)
    if topic and not TOPIC.fullmatch(topic):
        return [Check("fail", "pubsub", f"EA_PUBSUB_TOPIC {topic!r} must be projects/PROJECT/topics/TOPIC.")]
    if subscription and not SUBSCRIPTION.fullmatch(subscription):
        return [Check("fail", "pubsub", f"EA_PUBSUB_SUBSCRIPTION {subscription!r} must be "
                                        "projects/PROJECT/subscriptions/NAME.")]
    if any(push) and not all(push):
        return [Check("fail", "pubsub", "set both EA_PUBSUB_PUSH_AUDIENCE and EA_PUBSUB_PUSH_SERVICE_ACCOUNT "
                                        "(push tokens are checked against both), or neither.")]
    if not topic:
        if subscription or any(push):
            return [Check("warn", "pubsub", "a subscription or push is set but EA_PUBSUB_TOPIC is not: Gmail "
                                            "publishes nothing without it.")]
        return [Check("ok", "pubsub", f"off: mail is polled every {settings.mail_poll_seconds}s")]
    if not subscription and not any(push):
        return [Check("warn", "pubsub", "EA_PUBSUB_TOPIC is set but nothing receives it: set EA_PUBSUB_SUBSCRIPTION "
                                        "(pull) or the push audience and service account.")]
    if subscription and TOPIC.fullmatch(topic).group(1) != SUBSCRIPTION.fullmatch(subscription).group(1):
        return [Check("warn", "pubsub", "topic and subscription are in different projects: check that the "
                                        "subscription is attached to the topic.")]
    mode = "pull" if subscription else "push"
    emulator = f" (emulator {os.environ['PUBSUB_EMULATOR_HOST']})" if os.environ.get("PUBSUB_EMULATOR_HOST") else ""
    return [Check("ok", "pubsub", f"{mode} on {subscription or topic}{emulator}")]


async def _check_discovery(settings: Settings) -> Check:
    import httpx  # the doctor's own HTTP client, not loaded by the server at start-up

    url = settings.google_discovery_url
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
            response = await client.get(url)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Check("fail", "google", f"discovery document {url} unreachable ({exc.__class__.__name__}: "
                                       f"{str(exc)[:200]}): check the network or EA_GOOGLE_DISCOVERY_URL.")
    if not isinstance(document, dict) or not {"authorization_endpoint", "token_endpoint"} <= document.keys():
        return Check("fail", "google", f"{url} is not an OpenID discovery document: check EA_GOOGLE_DISCOVERY_URL.")
    return Check("ok", "google", f"client configured, discovery document from {document.get('issuer', url)}")


def check_langsmith() -> Check:
    """Whether LangSmith tracing is on, as LangSmith itself reads its standard variables (and so .env's values)."""
    from langsmith import utils as ls

    project = ls.get_tracer_project()
    if not ls.tracing_is_enabled():
        return Check("ok", "langsmith", f"tracing off (LANGSMITH_TRACING=true turns it on; project {project})")
    if not ls.get_api_key(None):
        return Check("warn", "langsmith", "LANGSMITH_TRACING is on but LANGSMITH_API_KEY is unset: traces are "
                                          "refused.")
    return Check("ok", "langsmith", f"tracing to project {project} at {ls.get_api_url(None)}")


async def run_doctor(out: TextIO) -> int:
    """Run every check, write one line each, and return the exit code (1 when any failed)."""
    try:
        settings = Settings()
    except ValidationError as exc:
        lines = [Check("fail", "settings", f"{'.'.join(map(str, e['loc']))}: {e['msg']}") for e in exc.errors()]
        results = lines
    else:
        results = [*check_settings(settings), *await check_database(settings), await check_model(settings),
                   *await check_google(settings), check_langsmith()]
    for result in results:
        out.write(f"{result.status:<4}  {result.name:<10}  {result.message}\n")
    failed = sum(r.status == "fail" for r in results)
    warned = sum(r.status == "warn" for r in results)
    out.write(f"{failed} failed, {warned} warning(s), {len(results) - failed - warned} ok\n")
    return 1 if failed else 0
