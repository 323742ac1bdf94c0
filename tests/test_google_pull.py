"""Pull mode against Google's real Pub/Sub emulator: notifications pulled, acked once the sync is queued."""

from __future__ import annotations

import json
import logging
import time
import uuid

from tests.support import ALICE, GoogleWorld, start_outreach, thread_when


def test_pull_subscription_hears_the_reply(google: GoogleWorld, pubsub_emulator: str, server_env: dict[str, str],
                                           tmp_path, model) -> None:
    from google.cloud import pubsub_v1

    _fake, script = model
    tag = uuid.uuid4().hex[:8]
    topic, subscription = f"projects/test-project/topics/gmail-{tag}", f"projects/test-project/subscriptions/ea-{tag}"
    publisher, admin = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    publisher.create_topic(name=topic)
    admin.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=10)
    server = google.server(server_env, tmp_path / "server.log", EA_PUBSUB_TOPIC=topic,
                           EA_PUBSUB_SUBSCRIPTION=subscription, PUBSUB_EMULATOR_HOST=pubsub_emulator,
                           EA_PUBSUB_PUSH_AUDIENCE="", EA_PUBSUB_PUSH_SERVICE_ACCOUNT="")
    try:
        assert f"pulling Gmail notifications from {subscription}" in server.log()
        alice = google.sign_in(server, ALICE)
        assert google.gmail.watch_state(ALICE)["topicName"] == topic
        tid = start_outreach(alice, "bob@example.org")
        thread_when(alice, tid, lambda t: t["status"] == "waiting", what="first email")
        [first] = google.gmail.sent(ALICE)
        google.reply(ALICE, first, "Pulled through Pub/Sub - what's the price?")

        note = json.dumps({"emailAddress": ALICE, "historyId": google.gmail.history_id(ALICE)}).encode()
        started = time.monotonic()
        futures = [publisher.publish(topic, b"this is not json")] + [publisher.publish(topic, note) for _ in range(3)]
        for f in futures:
            f.result(timeout=10)
        t = thread_when(alice, tid, lambda t: len(t["messages"]) == 3, what="answer via pull")
        logging.getLogger(__name__).info("publish -> answer (pull): %.2fs", time.monotonic() - started)
        assert t["messages"][1]["text"] == "Pulled through Pub/Sub - what's the price?"
        time.sleep(1)
        assert len(google.gmail.sent(ALICE)) == 2, "one answer for three notifications"
        assert [c["schema"] for c in script.calls].count("ReplyDraft") == 1
        assert "acknowledged and dropped" in server.log(), "the malformed message is acked, not redelivered forever"
    finally:
        server.stop()

    # Every message was acknowledged: nothing is left to redeliver once the subscriber is gone.
    deadline, left = time.monotonic() + 3, []
    while time.monotonic() < deadline and not left:
        left = admin.pull(subscription=subscription, max_messages=10, timeout=5).received_messages
    assert left == []
    admin.close()
