"""The one table of thread actions, used by the API and the dashboard: name, body model, runtime function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from agent.threads.models import DraftEdit, Feedback, HumanReply, SandboxReply, WaitRef
from runtime import actions
from runtime.services import Services


@dataclass(frozen=True)
class Action:
    """One thing a user can do to a thread."""

    name: str
    """The last URL segment: /api/threads/{id}/<name> and /threads/{id}/<name>."""
    func: Callable[..., Awaitable[Any]]
    body: type[BaseModel] | None
    """The request body (None: the action takes none)."""
    body_required: bool
    done: bool
    """True when the change is made at once; False when it is queued for the worker."""
    endpoint: str
    """The API route's name (and so its OpenAPI operation)."""
    doc: str

    async def run(self, svc: Services, *, user_id: UUID, thread_id: UUID, body: BaseModel | None = None) -> None:
        """Perform the action for this user's thread."""
        if self.body is None:
            await self.func(svc, user_id=user_id, thread_id=thread_id)
        else:
            await self.func(svc, user_id=user_id, thread_id=thread_id, body=body if body is not None else self.body())


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("approve", actions.approve, DraftEdit, False, False, "approve",
           "Approve the pending draft; send subject/text to approve your edited version."),
    Action("reject", actions.reject, WaitRef, False, False, "reject",
           "Reject the pending draft: nothing is sent and the thread comes to you."),
    Action("regenerate", actions.regenerate, Feedback, True, False, "regenerate",
           "Draft again, following your feedback."),
    Action("reply", actions.human_reply, HumanReply, True, False, "human_reply",
           "Send a reply you wrote (after taking over)."),
    Action("sandbox-reply", actions.sandbox_reply, SandboxReply, True, False, "sandbox_reply",
           "Sandbox only: reply as the recipient; the reply takes the same path as real mail."),
    Action("pause", actions.pause, None, False, True, "pause", "Hold the thread; replies are kept, nothing is sent."),
    Action("resume", actions.resume, None, False, False, "resume", "Continue a paused or parked thread."),
    Action("takeover", actions.takeover, None, False, False, "takeover", "Take the conversation over yourself."),
    Action("handback", actions.handback, None, False, False, "handback",
           "Give the conversation back to the assistant."),
    Action("stop", actions.stop, None, False, True, "stop", "Close the thread for good."),
)}
