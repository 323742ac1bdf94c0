-- Languages and learning from the user's edits (issue 9).
-- The detected language of every email (ISO 639-1, NULL when too short to tell), and the recipient's language
-- when the user knows it (a `language` column of an uploaded list): it sets the first email's language.
ALTER TABLE messages ADD COLUMN language text;
ALTER TABLE threads ADD COLUMN recipient_language text;

-- What the user changed in the assistant's drafts, per persona: an edit before approving (original -> edited
-- text) or a regeneration with feedback (original -> the feedback). The latest few become prompt examples.
CREATE TABLE draft_edits (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    assistant_id uuid NOT NULL REFERENCES assistants (id) ON DELETE CASCADE,
    thread_id uuid REFERENCES threads (id) ON DELETE SET NULL,
    kind text NOT NULL CHECK (kind IN ('edit', 'feedback')),
    draft_kind text NOT NULL,
    original text NOT NULL,
    revised text NOT NULL,
    dedupe_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (thread_id, dedupe_key)
);
CREATE INDEX draft_edits_assistant_idx ON draft_edits (assistant_id, created_at DESC, id DESC);
