-- Performance (issue 10): the sweep finds due follow-ups through an index instead of reading every thread.
CREATE INDEX threads_follow_up_due_idx ON threads (follow_up_due_at)
    WHERE follow_up_due_at IS NOT NULL AND status = 'waiting';
