-- Dashboard and API sign-in sessions, so that logging out (or disconnecting Google) ends them on the server.
-- The cookie carries a random session id; only its SHA-256 is stored, so a database dump holds no live session.
CREATE TABLE sessions (
    id_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
