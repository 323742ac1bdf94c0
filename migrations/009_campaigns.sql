-- Campaigns (issue 13): every bulk start (CSV or list) is a named campaign of one persona and many threads.
-- A thread started alone belongs to none (campaign_id NULL).
CREATE TABLE campaigns (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    assistant_id uuid NOT NULL REFERENCES assistants (id),
    name text NOT NULL,
    source text NOT NULL DEFAULT 'list' CHECK (source IN ('list', 'csv', 'xlsx')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaigns_user_idx ON campaigns (user_id, created_at DESC, id DESC);

ALTER TABLE threads ADD COLUMN campaign_id uuid REFERENCES campaigns (id) ON DELETE SET NULL;
CREATE INDEX threads_campaign_idx ON threads (campaign_id, status) WHERE campaign_id IS NOT NULL;
