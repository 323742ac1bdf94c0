-- Inbound mail that could not be read, or that answers one of our Message-IDs but matched no thread: kept and
-- retried by every sync instead of being passed over, and shown on its thread (or to the user) when it keeps failing.
CREATE TABLE inbound_pending (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    transport text NOT NULL,
    provider_message_id text NOT NULL,
    reason text NOT NULL CHECK (reason IN ('unreadable', 'unmatched')),
    thread_id uuid REFERENCES threads (id) ON DELETE SET NULL,
    attempts integer NOT NULL DEFAULT 1,
    last_error text NOT NULL DEFAULT '',
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, transport, provider_message_id)
);
CREATE INDEX inbound_pending_due_idx ON inbound_pending (user_id, transport, next_attempt_at);
