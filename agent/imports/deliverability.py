"""Can a recipient's domain receive mail? MX (or A/AAAA) lookups through email-validator, bounded and cached."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from agent.config import Settings

if TYPE_CHECKING:
    import dns.resolver

log = logging.getLogger(__name__)
CONCURRENCY = 16


class Verdict(StrEnum):
    """What the DNS said about a domain."""

    OK = "ok"
    REFUSED = "refused"
    NOT_CHECKED = "not_checked"


class Reason(StrEnum):
    """Why a domain was refused or not checked."""

    NO_DOMAIN = "no_domain"  # NXDOMAIN
    NULL_MX = "null_mx"  # RFC 7505: the domain says it takes no mail
    NO_MAIL_HOST = "no_mail_host"  # no MX, no A, no AAAA
    SENDS_NO_MAIL = "sends_no_mail"  # no MX and SPF "v=spf1 -all"
    TIMEOUT = "timeout"
    DNS_FAILED = "dns_failed"
    DISABLED = "disabled"


@dataclass(frozen=True)
class DomainCheck:
    """The outcome for one domain."""

    domain: str
    verdict: Verdict
    reason: Reason | None = None


def make_resolver(servers: list[tuple[str, int]], timeout: float) -> dns.resolver.Resolver:
    """A resolver asking these (address, port) servers, or the system's (/etc/resolv.conf) when there are none."""
    import dns.nameserver  # dnspython loads with the first import that checks domains, not at start-up
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in servers]
    resolver.timeout = resolver.lifetime = timeout
    resolver.cache = dns.resolver.LRUCache()
    return resolver


def check_domain(domain: str, resolver: dns.resolver.Resolver) -> DomainCheck:
    """One domain through email-validator's deliverability check (blocking: run it in a thread)."""
    import dns.exception
    import dns.resolver
    from email_validator import EmailUndeliverableError
    from email_validator.deliverability import validate_email_deliverability

    try:
        info = validate_email_deliverability(domain, domain, dns_resolver=resolver)
    except EmailUndeliverableError as exc:
        cause = exc.__cause__
        if isinstance(cause, dns.resolver.NXDOMAIN):
            return DomainCheck(domain, Verdict.REFUSED, Reason.NO_DOMAIN)
        if isinstance(cause, dns.resolver.NoAnswer):
            return DomainCheck(domain, Verdict.REFUSED, Reason.NO_MAIL_HOST)
        if cause is None and "does not accept email" in str(exc):
            return DomainCheck(domain, Verdict.REFUSED, Reason.NULL_MX)
        if cause is None and "does not send email" in str(exc):
            return DomainCheck(domain, Verdict.REFUSED, Reason.SENDS_NO_MAIL)
        log.info("DNS check of %s failed: %s", domain, exc)
        return DomainCheck(domain, Verdict.NOT_CHECKED, Reason.DNS_FAILED)
    except dns.exception.DNSException as exc:
        log.info("DNS check of %s failed: %s", domain, exc)
        return DomainCheck(domain, Verdict.NOT_CHECKED, Reason.DNS_FAILED)
    unknown = info.get("unknown-deliverability")
    if unknown:
        return DomainCheck(domain, Verdict.NOT_CHECKED, Reason.TIMEOUT if unknown == "timeout" else Reason.DNS_FAILED)
    return DomainCheck(domain, Verdict.OK)


async def check_domains(domains: Iterable[str], *, settings: Settings) -> dict[str, DomainCheck]:
    """Each distinct domain checked once, at most CONCURRENCY at a time; whatever is unfinished after the budget
    (a few timeouts' worth) is "not checked", so a slow resolver never holds an import up for long."""
    unique = sorted({d.strip().lower().rstrip(".") for d in domains if d.strip()})
    if not settings.check_deliverability:
        return {d: DomainCheck(d, Verdict.NOT_CHECKED, Reason.DISABLED) for d in unique}
    if not unique:
        return {}
    timeout = settings.dns_timeout_seconds
    resolver = make_resolver(settings.dns_server_addresses, timeout)
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(unique)), thread_name_prefix="dns-check")
    started = time.monotonic()
    futures = {d: loop.run_in_executor(executor, check_domain, d, resolver) for d in unique}
    try:
        # A lookup that times out costs one timeout; the batch gets two per round of CONCURRENCY, at most ten.
        rounds = -(-len(unique) // CONCURRENCY)
        budget = timeout * min(2 * rounds, 10)
        done, _pending = await asyncio.wait(futures.values(), timeout=budget)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    results = {d: f.result() if f in done else DomainCheck(d, Verdict.NOT_CHECKED, Reason.TIMEOUT)
               for d, f in futures.items()}
    log.info("checked %d domains in %.2fs", len(unique), time.monotonic() - started)
    return results


def domain_of(email: str) -> str:
    """The part after the last @, lowercased."""
    return email.rpartition("@")[2].strip().lower()
