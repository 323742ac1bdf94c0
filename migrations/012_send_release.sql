-- What a dispatcher pass released a queued email for: its slot (send_slot) or its thread's daily limit (limit).
-- A release whose delivery was lost (a crash between the pass and the resume) is delivered again as what it was.
ALTER TABLE send_queue ADD COLUMN released_as text CHECK (released_as IN ('send_slot', 'limit'));
UPDATE send_queue SET released_as = 'send_slot' WHERE dispatched_at IS NOT NULL;
