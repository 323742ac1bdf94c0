"""Domain-wide stop: when one person at a company declines or opts out, the other open threads there close."""

from __future__ import annotations

from uuid import UUID

from psycopg import AsyncConnection

from agent.events import service as events
from agent.threads import lifecycle
from agent.threads.lifecycle import CloseReason

TRIGGERS = frozenset({CloseReason.not_interested, CloseReason.unsubscribed})
CLOSE_REASON = CloseReason.company_declined
# Mailbox providers where one address says nothing about another person's employer.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com", "ymail.com",
    "rocketmail.com", "icloud.com", "me.com", "mac.com", "aol.com", "aim.com", "proton.me", "protonmail.com",
    "protonmail.ch", "pm.me", "tutanota.com", "tutanota.de", "tuta.io", "tuta.com", "fastmail.com", "fastmail.fm",
    "hey.com", "zoho.com", "zohomail.com", "mail.com", "email.com", "hushmail.com", "duck.com",
    "mail.ru", "bk.ru", "inbox.ru", "list.ru", "internet.ru", "yandex.ru", "yandex.com", "ya.ru", "rambler.ru",
    "web.de", "t-online.de", "freenet.de", "posteo.de", "mailbox.org", "arcor.de",
    "orange.fr", "wanadoo.fr", "free.fr", "laposte.net", "sfr.fr", "libero.it", "virgilio.it", "tiscali.it",
    "seznam.cz", "wp.pl", "o2.pl", "interia.pl", "onet.pl", "btinternet.com", "sky.com", "virginmedia.com",
    "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "cox.net", "charter.net", "earthlink.net",
    "qq.com", "163.com", "126.com", "sina.com", "naver.com", "hanmail.net", "daum.net", "rediffmail.com",
    "bigpond.com", "shaw.ca", "rogers.com", "uol.com.br", "bol.com.br", "terra.com.br",
})
# Providers with a domain in many countries (gmx.de, yahoo.co.uk, hotmail.fr, ...): the brand before a country suffix.
FREE_MAIL_BRANDS = frozenset({"gmx", "yahoo", "hotmail", "outlook", "live", "yandex", "aol"})


def domain_of(email: str) -> str:
    """The lower-cased domain of an address ('' when it has none)."""
    _local, at, domain = email.strip().lower().rpartition("@")
    return domain if at else ""


def is_free_mail(domain: str) -> bool:
    """True for public mailbox providers, where a shared domain does not mean a shared company."""
    domain = domain.strip().lower().rstrip(".")
    if domain in FREE_MAIL_DOMAINS:
        return True
    brand, _, suffix = domain.partition(".")
    parts = suffix.split(".")
    return brand in FREE_MAIL_BRANDS and 1 <= len(parts) <= 2 and all(1 <= len(p) <= 3 for p in parts)


async def stop_company(
    conn: AsyncConnection, *, user_id: UUID, thread_id: UUID, reason: CloseReason | str,
) -> list[UUID]:
    """After a thread closed for `reason`, close the user's other open threads at the same company when its
    persona asks for it; returns the ids closed."""
    if reason not in TRIGGERS:
        return []
    cur = await conn.execute(
        "SELECT t.recipient_email, a.stop_company_on_decline FROM threads t JOIN assistants a ON a.id = t.assistant_id"
        " WHERE t.id = %s AND t.user_id = %s",
        (thread_id, user_id),
    )
    row = await cur.fetchone()
    if row is None or not row["stop_company_on_decline"]:
        return []
    domain = domain_of(row["recipient_email"])
    if not domain or is_free_mail(domain):
        return []
    closed = await lifecycle.close_at_domain(conn, user_id=user_id, domain=domain, except_thread_id=thread_id,
                                             reason=CLOSE_REASON)
    said = "opted out" if reason == CloseReason.unsubscribed else "declined"
    for other in closed:
        await events.record(
            conn, user_id=user_id, thread_id=other["id"], kind="closed", actor="assistant", dedupe_key="closed",
            summary=f"Closed: {row['recipient_email']} at {domain} {said} (thread {thread_id}).",
            detail={"reason": CLOSE_REASON.value, "trigger_thread_id": str(thread_id), "domain": domain,
                    "trigger_reason": str(reason)},
        )
    if closed:
        await events.record(
            conn, user_id=user_id, thread_id=thread_id, kind="company_stopped", actor="assistant",
            dedupe_key="company_stopped",
            summary=f"Closed {len(closed)} other open thread(s) at {domain}.",
            detail={"domain": domain, "closed_thread_ids": [str(o["id"]) for o in closed],
                    "recipients": [o["recipient_email"] for o in closed]},
        )
    return [o["id"] for o in closed]
