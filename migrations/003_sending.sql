-- Safe sending: windows per persona, caps and spacing per mailbox, the send queue, digests and opt-outs.

ALTER TABLE assistants
    ADD COLUMN send_days integer[] NOT NULL DEFAULT '{1,2,3,4,5}'
        CHECK (send_days <@ '{1,2,3,4,5,6,7}' AND cardinality(send_days) > 0),   -- ISO weekdays, Monday = 1
    ADD COLUMN send_start time NOT NULL DEFAULT '09:00',
    ADD COLUMN send_end time NOT NULL DEFAULT '17:00',
    ADD COLUMN timezone text NOT NULL DEFAULT 'UTC',
    ADD COLUMN stop_company_on_decline boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT assistants_window_check CHECK (send_start < send_end OR send_end = '00:00');  -- 00:00 = midnight

ALTER TABLE threads
    ADD COLUMN recipient_timezone text,          -- the recipient's zone when known (e.g. from an uploaded list)
    ADD COLUMN fields jsonb NOT NULL DEFAULT '{}', -- personal fields from an uploaded list (first name, role, ...)
    ADD COLUMN send_at timestamptz;              -- when the queued email is expected to go

-- One row per user: the limits of their mailbox and what the sender has decided about it.
CREATE TABLE sending_settings (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    daily_cap integer NOT NULL DEFAULT 30 CHECK (daily_cap BETWEEN 1 AND 2000),
    spacing_min_seconds integer NOT NULL DEFAULT 60 CHECK (spacing_min_seconds >= 0),
    spacing_max_seconds integer NOT NULL DEFAULT 180,
    per_thread_daily_max integer NOT NULL DEFAULT 3 CHECK (per_thread_daily_max BETWEEN 1 AND 20),
    bounce_threshold numeric NOT NULL DEFAULT 0.05 CHECK (bounce_threshold > 0 AND bounce_threshold <= 1),
    bounce_window integer NOT NULL DEFAULT 50 CHECK (bounce_window BETWEEN 10 AND 1000),
    timezone text NOT NULL DEFAULT 'UTC',        -- the mailbox's calendar day for the daily cap
    outreach_paused_reason text,                 -- set when the bounce rate paused new outreach
    outreach_resumed_at timestamptz,             -- sends before this no longer count toward the bounce rate
    next_send_not_before timestamptz,            -- the spacing reservation for the next send
    digest_enabled boolean NOT NULL DEFAULT false,
    digest_interval_hours integer NOT NULL DEFAULT 24 CHECK (digest_interval_hours BETWEEN 1 AND 168),
    last_digest_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (spacing_min_seconds <= spacing_max_seconds)
);

-- Emails waiting for their sending slot (real mailboxes only; sandbox mail is a rehearsal and goes at once).
CREATE TABLE send_queue (
    thread_id uuid NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    step integer NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind text NOT NULL,
    priority integer NOT NULL,                   -- 0 replies to people who wrote back, 1 follow-ups, 2 first emails
    wait_id text NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    estimated_at timestamptz,
    dispatched_at timestamptz,
    PRIMARY KEY (thread_id, step)
);
CREATE INDEX send_queue_pending_idx ON send_queue (user_id, priority, enqueued_at) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_user_sent_idx ON outbox (user_id, sent_at) WHERE status = 'sent';
