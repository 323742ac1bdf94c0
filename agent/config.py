"""Typed settings read from the environment (and a .env file) once, at startup."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The widest network EA_LOCAL_ALLOWED_CLIENTS accepts: a /16 (IPv4) or /48 (IPv6) is already a whole site.
MIN_ALLOWED_PREFIX = {4: 16, 6: 48}
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "changethis", "secret", "please-change", "xxx"}


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says what to set."""


class Settings(BaseSettings):
    """Every setting, named as in the design's configuration table."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("email-assistant")),
        validation_alias="EA_DATA_DIR",
    )
    host: str = Field(default="127.0.0.1", validation_alias="EA_HOST")
    local_allowed_clients: str = Field(default="", validation_alias="EA_LOCAL_ALLOWED_CLIENTS")
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="EA_PORT")
    base_url: str = Field(default="", validation_alias="EA_BASE_URL")
    secret_key: SecretStr | None = Field(default=None, validation_alias="EA_SECRET_KEY")

    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    llm_model: str = Field(default="gpt-4o-mini", validation_alias="EA_LLM_MODEL")
    llm_timeout_seconds: float = Field(default=60.0, gt=0, validation_alias="EA_LLM_TIMEOUT_SECONDS")
    llm_max_retries: int = Field(default=2, ge=0, le=10, validation_alias="EA_LLM_MAX_RETRIES")
    # Model calls in flight per process (0: no limit); a call waits for a place before its timeout starts.
    llm_concurrency: int = Field(default=0, ge=0, le=1024, validation_alias="EA_LLM_CONCURRENCY")

    google_client_id: str | None = Field(default=None, validation_alias="GOOGLE_CLIENT_ID")
    google_client_secret: SecretStr | None = Field(default=None, validation_alias="GOOGLE_CLIENT_SECRET")
    google_discovery_url: str = Field(
        default="https://accounts.google.com/.well-known/openid-configuration",
        validation_alias="EA_GOOGLE_DISCOVERY_URL",
    )
    gmail_api_url: str = Field(default="https://gmail.googleapis.com", validation_alias="EA_GMAIL_API_URL")
    google_certs_url: str = Field(
        default="https://www.googleapis.com/oauth2/v1/certs", validation_alias="EA_GOOGLE_CERTS_URL"
    )
    pubsub_topic: str | None = Field(default=None, validation_alias="EA_PUBSUB_TOPIC")
    pubsub_push_audience: str | None = Field(default=None, validation_alias="EA_PUBSUB_PUSH_AUDIENCE")
    pubsub_push_service_account: str | None = Field(
        default=None, validation_alias="EA_PUBSUB_PUSH_SERVICE_ACCOUNT"
    )
    pubsub_subscription: str | None = Field(default=None, validation_alias="EA_PUBSUB_SUBSCRIPTION")
    mail_poll_seconds: int = Field(default=60, ge=5, validation_alias="EA_MAIL_POLL_SECONDS")
    google_retry_base_seconds: float = Field(default=1.0, gt=0, le=60, validation_alias="EA_GOOGLE_RETRY_BASE_SECONDS")
    google_max_attempts: int = Field(default=6, ge=1, le=20, validation_alias="EA_GOOGLE_MAX_ATTEMPTS")

    worker_in_process: bool = Field(default=True, validation_alias="EA_WORKER_IN_PROCESS")
    worker_concurrency: int = Field(default=256, ge=1, le=1024, validation_alias="EA_WORKER_CONCURRENCY")
    db_pool_size: int = Field(default=10, ge=2, le=100, validation_alias="EA_DB_POOL_SIZE")
    job_poll_seconds: float = Field(default=5.0, gt=0, validation_alias="EA_JOB_POLL_SECONDS")
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(default="auto", validation_alias="EA_EVENT_LOOP")
    """`serve` and `worker`'s event loop: uvloop where it is installed (auto), or the standard library's."""
    retry_base_seconds: int = Field(default=30, ge=1, validation_alias="EA_RETRY_BASE_SECONDS")
    session_idle_minutes: int = Field(default=7 * 24 * 60, ge=1, validation_alias="EA_SESSION_IDLE_MINUTES")
    session_max_hours: int = Field(default=14 * 24, ge=1, validation_alias="EA_SESSION_MAX_HOURS")
    check_deliverability: bool = Field(default=True, validation_alias="EA_CHECK_DELIVERABILITY")
    dns_servers: str = Field(default="", validation_alias="EA_DNS_SERVERS")
    dns_timeout_seconds: float = Field(default=2.0, gt=0, le=30, validation_alias="EA_DNS_TIMEOUT_SECONDS")

    log_level: str = Field(default="INFO", validation_alias=AliasChoices("EA_LOG_LEVEL", "LOG_LEVEL"))
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="EA_LOG_FORMAT")
    metrics_token: SecretStr | None = Field(default=None, validation_alias="EA_METRICS_TOKEN")
    worker_metrics_port: int = Field(default=0, ge=0, le=65535, validation_alias="EA_WORKER_METRICS_PORT")
    worker_metrics_host: str = Field(default="127.0.0.1", validation_alias="EA_WORKER_METRICS_HOST")

    @field_validator("base_url", "gmail_api_url", "openai_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("dns_servers")
    @classmethod
    def _check_dns_servers(cls, value: str) -> str:
        parse_dns_servers(value)
        return value

    @property
    def dns_server_addresses(self) -> list[tuple[str, int]]:
        """EA_DNS_SERVERS as (IP address, port) pairs; empty means the system resolver."""
        return parse_dns_servers(self.dns_servers)

    @model_validator(mode="after")
    def _default_base_url(self) -> Settings:
        if not self.base_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
            self.base_url = f"http://{host}:{self.port}"
        return self

    @property
    def local_mode(self) -> bool:
        """No Google client configured: one local user, sandbox mail, loopback only."""
        return not (self.google_client_id and self.google_client_secret)

    @property
    def llm_configured(self) -> bool:
        """A model endpoint is usable: a key, or a custom endpoint (Ollama/vLLM need no key)."""
        return bool(self.openai_api_key or self.openai_base_url)

    @cached_property
    def sender_domain(self) -> str:
        """Domain used for generated Message-IDs."""
        host = self.base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        return host or "localhost"

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redactor."""
        values = [*self.secret_keys(), *(s.get_secret_value() for s in (
            self.openai_api_key, self.google_client_secret, self.metrics_token, self.secret_key) if s)]
        return [v for v in values if v]

    def secret_keys(self) -> list[str]:
        """The Fernet key ring from EA_SECRET_KEY (first is current); empty when unset."""
        raw = self.secret_key.get_secret_value() if self.secret_key else ""
        return [k.strip() for k in raw.split(",") if k.strip()]

    def local_client_networks(self) -> list[IPNetwork]:
        """EA_LOCAL_ALLOWED_CLIENTS as networks; each must be private (a container network, not the internet)."""
        networks: list[IPNetwork] = []
        for item in (part.strip() for part in self.local_allowed_clients.split(",")):
            if not item:
                continue
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ConfigError(
                    f"EA_LOCAL_ALLOWED_CLIENTS: {item!r} is not an IP network (e.g. 10.89.64.0/24).") from exc
            widest = MIN_ALLOWED_PREFIX[network.version]
            if not (network.is_private or network.is_loopback) or network.prefixlen < widest:
                raise ConfigError(
                    f"EA_LOCAL_ALLOWED_CLIENTS: {item} is not a private network of at most /{widest}; "
                    f"list only the container network's own subnet."
                )
            networks.append(network)
        return networks

    def check(self) -> None:
        """Refuse configurations that cannot be safe; raise ConfigError with the fix."""
        keys = self.secret_keys()
        if not self.local_mode:
            if not keys or any(k.lower() in PLACEHOLDER_SECRETS for k in keys):
                raise ConfigError(
                    "EA_SECRET_KEY is unset or a placeholder. Outside local mode it must be a real "
                    "Fernet key: generate one with `python -c \"from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())\"`."
                )
        # Without a token a worker's /metrics answers only in local mode (404 otherwise, as the server's), so it
        # may leave loopback only where the server may: to the allowed container subnet.
        if self.worker_metrics_port and self.local_mode and not is_loopback(self.worker_metrics_host) \
                and self.metrics_token is None and not self.local_client_networks():
            raise ConfigError(
                f"EA_WORKER_METRICS_HOST={self.worker_metrics_host} publishes a local-mode worker's metrics beyond "
                f"loopback: set EA_METRICS_TOKEN so that scrapes must authenticate, or EA_LOCAL_ALLOWED_CLIENTS to "
                f"the container network's subnet."
            )
        if self.local_mode and not is_loopback(self.host) and not self.local_client_networks():
            raise ConfigError(
                f"Local mode (no GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET) serves one user without "
                f"sign-in, so it binds to loopback only; refusing host {self.host!r}. Use 127.0.0.1, "
                f"or configure Google sign-in to serve other addresses (in a container: set "
                f"EA_LOCAL_ALLOWED_CLIENTS to the container network's subnet, see docs/containers.md)."
            )


def parse_dns_servers(value: str) -> list[tuple[str, int]]:
    """"1.1.1.1, 127.0.0.1:5353, [::1]:5353" as (address, port) pairs; ValueError naming a bad entry."""
    servers = []
    for spec in (s.strip() for s in value.split(",") if s.strip()):
        if spec.startswith("["):
            host, _sep, port = spec[1:].partition("]")
            port = port.removeprefix(":")
        elif spec.count(":") == 1:
            host, _sep, port = spec.partition(":")
        else:
            host, port = spec, ""
        try:
            address, number = str(ipaddress.ip_address(host)), int(port or 53)
        except ValueError as exc:
            raise ValueError(f"EA_DNS_SERVERS entry {spec!r} is not IP[:port] (IPv6 as [addr]:port)") from exc
        if not 0 < number < 65536:
            raise ValueError(f"EA_DNS_SERVERS entry {spec!r} has a port outside 1-65535")
        servers.append((address, number))
    return servers


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
