-- Storage (issue 10): the same information in fewer bytes per conversation.

-- The dashboard's positive-reply count is the only reader of events by user and kind, and it reads decisions (3
-- of a six-message conversation's 17 events); the digest reads the user's own events, which have no thread.
DROP INDEX events_user_kind_at_idx;
CREATE INDEX events_decision_at_idx ON events (user_id, at) WHERE kind = 'decision';
CREATE INDEX events_user_level_idx ON events (user_id, kind, id) WHERE thread_id IS NULL;

-- The sandbox looks mail up by Message-ID only to reconcile a send (direction 'out').
DROP INDEX sandbox_mail_message_id_idx;
CREATE INDEX sandbox_mail_sent_idx ON sandbox_mail (user_id, message_id) WHERE direction = 'out';

-- full_text is kept only when it differs from text (agent/threads/messages.py fills it in on read).
UPDATE messages SET full_text = '' WHERE full_text <> '' AND full_text = text;
