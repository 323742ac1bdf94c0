-- Google: each signed-in Google account's Gmail mailbox, its encrypted grant and its sync cursor.

CREATE TABLE mailboxes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider text NOT NULL DEFAULT 'gmail' CHECK (provider IN ('gmail')),
    email text NOT NULL,
    grant_enc text,                -- Fernet(JSON {refresh_token, scopes, granted_at}) with EA_SECRET_KEY; never logged
    scopes text[] NOT NULL DEFAULT '{}',
    granted_at timestamptz,
    status text NOT NULL DEFAULT 'connected' CHECK (status IN ('connected', 'disconnected')),
    disconnect_reason text,        -- shown to the user while disconnected
    history_id bigint,             -- Gmail history cursor; only ever moves forward
    watch_expiration timestamptz,  -- when the users.watch registration lapses
    watch_renewed_at timestamptz,
    polled_at timestamptz DEFAULT now(),  -- last time a poll queued a sync (claimed atomically by one process)
    synced_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, provider)
);
CREATE UNIQUE INDEX mailboxes_provider_email_key ON mailboxes (provider, lower(email));
