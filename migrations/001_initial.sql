-- Core schema: users, personas, threads, messages, the outbox, the audit trail and suppressions.
-- Every row belongs to a user; every query filters by user_id.

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL,
    name text NOT NULL DEFAULT '',
    google_sub text UNIQUE,
    is_local boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE assistants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    sender_name text NOT NULL,
    role text NOT NULL DEFAULT '',
    company text NOT NULL DEFAULT '',
    offer text NOT NULL,
    value_proposition text NOT NULL DEFAULT '',
    target_audience text NOT NULL DEFAULT '',
    goal text NOT NULL,
    call_to_action text NOT NULL DEFAULT '',
    tone text NOT NULL DEFAULT 'friendly and concise',
    language text NOT NULL DEFAULT 'match',
    signature text NOT NULL DEFAULT '',
    knowledge text NOT NULL DEFAULT '',
    forbidden text NOT NULL DEFAULT '',
    autonomy text NOT NULL DEFAULT 'approve_first'
        CHECK (autonomy IN ('autonomous', 'approve_first', 'approve_all')),
    follow_up_count integer NOT NULL DEFAULT 2 CHECK (follow_up_count BETWEEN 0 AND 10),
    follow_up_days integer NOT NULL DEFAULT 3 CHECK (follow_up_days BETWEEN 1 AND 90),
    max_replies integer NOT NULL DEFAULT 5 CHECK (max_replies BETWEEN 0 AND 50),
    archived_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assistants_user_idx ON assistants (user_id, created_at DESC);

CREATE TABLE threads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    assistant_id uuid NOT NULL REFERENCES assistants (id),
    recipient_email text NOT NULL,
    recipient_name text NOT NULL DEFAULT '',
    recipient_company text NOT NULL DEFAULT '',
    context text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'awaiting_approval', 'waiting', 'needs_human', 'paused', 'closed')),
    close_reason text,
    park_reason text,              -- why the system parked it (model or transport failure); NULL when not parked
    failures integer NOT NULL DEFAULT 0,
    wait_id text,                  -- the interrupt the graph is waiting in, NULL while running or closed
    wait_kind text,                -- reply | approval | human | send_slot
    pending_draft jsonb,           -- the draft waiting for approval
    follow_up_due_at timestamptz,
    subject text,                  -- subject of the first email; replies use "Re: " + it
    provider_thread_id text,       -- the mail provider's conversation id (Gmail threadId)
    transport text NOT NULL DEFAULT 'sandbox',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX threads_user_idx ON threads (user_id, created_at DESC, id DESC);
CREATE INDEX threads_user_status_idx ON threads (user_id, status, created_at DESC, id DESC);
CREATE INDEX threads_provider_idx ON threads (user_id, provider_thread_id);
-- No second open thread to an address that is already in one.
CREATE UNIQUE INDEX threads_one_open_per_recipient
    ON threads (user_id, lower(recipient_email)) WHERE status <> 'closed';

CREATE TABLE messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    thread_id uuid REFERENCES threads (id) ON DELETE CASCADE,
    direction text NOT NULL CHECK (direction IN ('in', 'out')),
    author text NOT NULL DEFAULT 'assistant' CHECK (author IN ('assistant', 'human', 'recipient')),
    transport text NOT NULL,
    provider_message_id text NOT NULL,
    provider_thread_id text,
    message_id text,               -- RFC 5322 Message-ID with angle brackets
    in_reply_to text,
    "references" text[] NOT NULL DEFAULT '{}',
    from_addr text NOT NULL,
    to_addr text NOT NULL,
    subject text NOT NULL DEFAULT '',
    text text NOT NULL DEFAULT '',
    full_text text NOT NULL DEFAULT '',
    headers jsonb NOT NULL DEFAULT '{}',
    auto_reply text,
    bounce text,
    processed_at timestamptz,      -- inbound: when the graph read it
    at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, transport, provider_message_id)
);
CREATE INDEX messages_thread_idx ON messages (thread_id, at);
CREATE INDEX messages_message_id_idx ON messages (user_id, message_id);
CREATE INDEX messages_unprocessed_idx ON messages (thread_id) WHERE direction = 'in' AND processed_at IS NULL;

CREATE TABLE outbox (
    thread_id uuid NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    step integer NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind text NOT NULL,
    author text NOT NULL DEFAULT 'assistant',
    message_id text NOT NULL UNIQUE,
    subject text NOT NULL,
    text text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'refused')),
    provider_message_id text,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    PRIMARY KEY (thread_id, step)
);

CREATE TABLE events (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    thread_id uuid REFERENCES threads (id) ON DELETE CASCADE,
    kind text NOT NULL,
    summary text NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}',
    actor text NOT NULL DEFAULT 'assistant',
    model text,
    dedupe_key text,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_thread_idx ON events (thread_id, id);
CREATE UNIQUE INDEX events_dedupe_key ON events (thread_id, dedupe_key) WHERE dedupe_key IS NOT NULL;

CREATE TABLE suppressions (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email text NOT NULL,
    reason text NOT NULL,
    source_thread_id uuid REFERENCES threads (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, email),
    CHECK (email = lower(email))
);

-- The sandbox mailbox: where mail goes until Gmail is connected (raw RFC 5322 messages).
CREATE TABLE sandbox_mail (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_message_id text NOT NULL UNIQUE,
    provider_thread_id text NOT NULL,
    message_id text NOT NULL,
    direction text NOT NULL CHECK (direction IN ('in', 'out')),
    raw bytea NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_mail_message_id_idx ON sandbox_mail (user_id, message_id);
