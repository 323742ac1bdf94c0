"""Shared helpers and sample messages for the MIME / automated-mail tests."""

from __future__ import annotations

from agent.mail.mime import parse_message
from agent.mail.models import OutgoingMessage

__all__ = ["GMAIL_REPLY", "_outgoing", "_parse"]


def _parse(raw: str | bytes, **kwargs):
    """parse_message with fixed provider ids; str fixtures are encoded as UTF-8 with CRLF line ends."""
    data = raw.replace("\n", "\r\n").encode("utf-8") if isinstance(raw, str) else raw
    return parse_message(data, provider_message_id="p1", provider_thread_id="t1", **kwargs)


def _outgoing(**overrides) -> OutgoingMessage:
    """A typical Cyrillic outgoing reply in a thread."""
    fields = dict(
        from_addr="anna@example.com", from_name="Анна Иванова", to_addr="Ivan.Petrov@Example.org",
        to_name="Иван Петров", subject="Встреча на следующей неделе — вторник?",
        text="Здравствуйте, Иван!\n\nДавайте созвонимся во вторник.\nПрограмма: https://example.com/plan?a=1&b=2.\n\n"
             "<script>alert('x')</script> & «кавычки»",
        message_id="<abc123@example.com>", in_reply_to="<prev2@example.org>",
        references=("<first@example.com>", "<prev2@example.org>"),
        extra_headers=(("X-Outreach-Campaign", "c-42"),),
    )
    fields.update(overrides)
    return OutgoingMessage(**fields)


# A Gmail reply with a quoted thread below the new text.
GMAIL_REPLY = """From: Ivan Petrov <Ivan@Example.org>
To: Anna <anna@example.com>
Cc: Boss <BOSS@example.org>, anna@example.com
Subject: Re: Meeting next week
Date: Tue, 07 Jan 2025 09:15:00 +0300
Message-ID: <CAF+reply@mail.gmail.com>
In-Reply-To: <abc123@example.com>
References: <first@example.com>
 <abc123@example.com>
Content-Type: text/plain; charset="UTF-8"

Sounds good, Tuesday at 3pm works for me.
Please send the invite.

On Mon, Jan 6, 2025 at 10:00 AM Anna Ivanova <
anna@example.com> wrote:

> Hi Ivan,
>
> Would you like to meet next week?
>
> On Fri, Jan 3, 2025 at 9:00 AM Ivan Petrov <ivan@example.org> wrote:
> > Earlier message
"""
