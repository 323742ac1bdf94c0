-- Search inside mail (issue 13): the thread list's search covers the subjects and bodies of a thread's emails.
-- Full-text search with the `russian` configuration: Cyrillic words get the Russian stemmer, ASCII words the English
-- one, so "pricing" finds "price" and "цены" finds "цена". pg_trgm is not used: the embedded PostgreSQL (pgserver)
-- does not ship it. The expression must stay identical to MESSAGE_DOCUMENT in agent/threads/service.py.
CREATE INDEX messages_search_idx ON messages
    USING gin (to_tsvector('russian'::regconfig, left(subject || ' ' || text, 100000)));
