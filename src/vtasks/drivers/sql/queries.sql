-- The ORM driver's raw statements (the rest is ORM code). Each block starts with a "-- name: <name>"
-- line; whole-line comments are not sent. 'READY' is written as a literal on purpose: SQLite uses
-- a partial index only when the query spells its condition (a bound parameter does not count).

-- name: known_queues
-- The queues holding READY records, for queue selectors, on PostgreSQL: a skip scan of the partial
-- READY index (one index probe per queue: the next name after the last one found), so its cost
-- grows with the number of queues, not of records.
WITH RECURSIVE known (queue_name) AS (
    SELECT (
        SELECT queue_name FROM vtasks_task WHERE status = 'READY' ORDER BY queue_name LIMIT 1
    )
    UNION ALL
    SELECT (
        SELECT t.queue_name FROM vtasks_task AS t
        WHERE t.status = 'READY' AND t.queue_name > known.queue_name
        ORDER BY t.queue_name LIMIT 1
    )
    FROM known
    WHERE known.queue_name IS NOT NULL
)
SELECT queue_name FROM known WHERE queue_name IS NOT NULL

-- name: known_queues_sqlite
-- The same on SQLite, whose planner prefers the plain (queue_name, status, ...) index: skip over
-- every queue name (one probe each), then keep those with a READY record (one probe each).
-- Restricting the skip to READY rows on that index would wade through a queue's finished rows.
WITH RECURSIVE known (queue_name) AS (
    SELECT (SELECT queue_name FROM vtasks_task ORDER BY queue_name LIMIT 1)
    UNION ALL
    SELECT (
        SELECT t.queue_name FROM vtasks_task AS t WHERE t.queue_name > known.queue_name
        ORDER BY t.queue_name LIMIT 1
    )
    FROM known
    WHERE known.queue_name IS NOT NULL
)
SELECT k.queue_name FROM known AS k
WHERE k.queue_name IS NOT NULL AND EXISTS (
    SELECT 1 FROM vtasks_task AS r WHERE r.queue_name = k.queue_name AND r.status = 'READY'
)

-- name: next_queue_mysql
-- MySQL/MariaDB: the recursive form and SELECT DISTINCT both scan the whole index there, so the
-- driver walks the names itself, one round trip per queue: the next name after %s (MIN over the
-- index's first column: "Select tables optimized away") and whether it has a READY record.
SELECT n.queue_name, EXISTS (
    SELECT 1 FROM vtasks_task AS r WHERE r.queue_name = n.queue_name AND r.status = 'READY'
) AS ready
FROM (SELECT MIN(queue_name) AS queue_name FROM vtasks_task WHERE queue_name > %s) AS n
