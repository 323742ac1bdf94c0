-- The main page's statistics read a user's recent messages and decisions by time.
CREATE INDEX messages_user_at_idx ON messages (user_id, at);
CREATE INDEX events_user_kind_at_idx ON events (user_id, kind, at);
