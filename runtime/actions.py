"""What a user can do to a thread: each checks the thread's state, then queues an event or records a change."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

from agent.errors import Conflict
from agent.events import service as events
from agent.mail.sandbox import SandboxTransport
from agent.threads import lifecycle, messages
from agent.threads import service as threads
from agent.threads.lifecycle import CloseReason, EventType, Status, WaitKind
from agent.threads.models import DraftEdit, Feedback, HumanReply, SandboxReply, ThreadRow, WaitRef
from runtime import defer, inbound
from runtime.services import Services


async def _thread(svc: Services, user_id: UUID, thread_id: UUID) -> ThreadRow:
    async with svc.pool.connection() as conn:
        return await threads.get(conn, user_id=user_id, thread_id=thread_id)


def _require(thread: ThreadRow, statuses: Collection[Status], doing: str) -> None:
    if thread.status not in statuses:
        state = thread.status.replace("_", " ")
        raise Conflict(f"Cannot {doing}: the thread is {state}.")


async def _queue(svc: Services, thread: ThreadRow, event: dict[str, Any]) -> None:
    await defer.defer_resume(svc.jobs, thread_id=thread.id, event=event)


async def approve(svc: Services, *, user_id: UUID, thread_id: UUID, body: DraftEdit) -> None:
    """Approve the pending draft, with the user's edits if any."""
    thread = await _thread(svc, user_id, thread_id)
    _require(thread, {Status.awaiting_approval}, "approve")
    event = {"type": EventType.approve.value, "wait_id": body.wait_id or thread.wait_id, "by": str(user_id)}
    event.update({k: v for k, v in (("subject", body.subject), ("text", body.text)) if v})
    await _queue(svc, thread, event)


async def reject(svc: Services, *, user_id: UUID, thread_id: UUID, body: WaitRef) -> None:
    """Reject the pending draft: nothing is sent and the thread comes to you."""
    thread = await _thread(svc, user_id, thread_id)
    _require(thread, {Status.awaiting_approval}, "reject")
    await _queue(svc, thread, {"type": EventType.reject.value, "wait_id": body.wait_id or thread.wait_id})


async def regenerate(svc: Services, *, user_id: UUID, thread_id: UUID, body: Feedback) -> None:
    """Ask for a new draft that follows the feedback."""
    thread = await _thread(svc, user_id, thread_id)
    _require(thread, {Status.awaiting_approval}, "regenerate")
    await _queue(svc, thread, {"type": EventType.regenerate.value, "wait_id": body.wait_id or thread.wait_id,
                               "feedback": body.feedback})


async def pause(svc: Services, *, user_id: UUID, thread_id: UUID) -> None:
    """Hold the thread: nothing is sent until it resumes; replies are kept."""
    async with svc.pool.connection() as conn:
        thread = await threads.get(conn, user_id=user_id, thread_id=thread_id, for_update=True)
        _require(thread, lifecycle.PAUSABLE, "pause")
        await lifecycle.pause(conn, thread_id=thread_id)
        await events.record(conn, user_id=user_id, thread_id=thread_id, kind="paused", actor="user",
                            summary="You paused the thread.")


async def resume(svc: Services, *, user_id: UUID, thread_id: UUID) -> None:
    """Continue a paused or parked thread now."""
    thread = await _thread(svc, user_id, thread_id)
    _require(thread, {Status.paused}, "resume")
    async with svc.pool.connection() as conn:
        await events.record(conn, user_id=user_id, thread_id=thread_id, kind="resumed", actor="user",
                            summary="You resumed the thread.")
    await _queue(svc, thread, {"type": EventType.resume.value})


async def takeover(svc: Services, *, user_id: UUID, thread_id: UUID) -> None:
    """Take the conversation over: the assistant stops writing until you hand it back."""
    thread = await _thread(svc, user_id, thread_id)
    if not (thread.status == Status.active and thread.wait_kind == WaitKind.send_slot):  # queued: still possible
        _require(thread, {Status.waiting, Status.awaiting_approval}, "take over")
    await _queue(svc, thread, {"type": EventType.takeover.value})


async def handback(svc: Services, *, user_id: UUID, thread_id: UUID) -> None:
    """Give the conversation back to the assistant."""
    thread = await _thread(svc, user_id, thread_id)
    _require(thread, {Status.needs_human}, "hand back")
    await _queue(svc, thread, {"type": EventType.handback.value})


async def human_reply(svc: Services, *, user_id: UUID, thread_id: UUID, body: HumanReply) -> None:
    """Send a reply you wrote, through the same transport and conversation."""
    thread = await _thread(svc, user_id, thread_id)
    _require(thread, {Status.needs_human}, "send your reply (take over first)")
    await _queue(svc, thread, {"type": EventType.human_reply.value, "text": body.text})


async def stop(svc: Services, *, user_id: UUID, thread_id: UUID) -> None:
    """Close the thread for good; nothing more is sent."""
    async with svc.pool.connection() as conn:
        thread = await threads.get(conn, user_id=user_id, thread_id=thread_id, for_update=True)
        _require(thread, lifecycle.STOPPABLE, "stop")
        await lifecycle.close(conn, thread_id=thread_id, reason=CloseReason.stopped)
        await events.record(conn, user_id=user_id, thread_id=thread_id, kind="closed", actor="user",
                            summary="You stopped the thread.", detail={"reason": CloseReason.stopped.value},
                            dedupe_key="closed")


async def sandbox_reply(svc: Services, *, user_id: UUID, thread_id: UUID, body: SandboxReply) -> inbound.Received:
    """Post a reply as the recipient; it takes the same inbound path as real mail (parsed from the stored bytes,
    matched, stored and its thread's resume queued), in one transaction with the mailbox write."""
    transport = await svc.transport_for(user_id)
    async with svc.pool.connection() as conn:
        thread = await threads.get(conn, user_id=user_id, thread_id=thread_id)
        if thread.transport != "sandbox" or not isinstance(transport, SandboxTransport):
            raise Conflict("Sandbox replies exist only for sandbox threads.")
        last = await messages.last_outbound(conn, thread_id=thread_id)
        if last is None:
            raise Conflict("Nothing has been sent in this thread yet, so there is nothing to reply to.")
        msg = await transport.deliver_reply_in(
            conn, thread=thread, last_message=last, our_address=last["from_addr"], text=body.text,
            subject=body.subject, headers=body.headers, domain=svc.settings.sender_domain,
        )
        received = await inbound.store(conn, jobs=svc.jobs, user_id=user_id, transport=transport.name, msg=msg)
    return inbound.stored(received)
