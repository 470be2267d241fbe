-- Every statement PostgresDriver sends. Each block starts with a "-- name: <name>" line; the other
-- whole-line comments are documentation and are not sent. Parameters use psycopg's named style.
-- Timestamps come from Python (the now, cutoff, ... parameters) so that rows written here and rows
-- written by Django's ORM (the database backend, SqlDriver) agree on one clock.

-- name: set_time_zone
-- Run once per new connection: timestamps come back in the zone Django uses for this database.
SELECT set_config('TimeZone', %(time_zone)s, false)

-- name: claim
-- Take up to limit due READY records of one queue, highest priority first, FIFO within a priority.
-- SKIP LOCKED lets concurrent claimers take disjoint rows instead of queueing behind each other.
-- RETURNING gives the values as they were before (the locked picked rows): Python builds the claim
-- from them exactly as SqlDriver does. worker_ids is appended to as text, never parsed, so that a
-- malformed value cannot fail the claim (the executor fails that record with the reason); any
-- value but a non-empty array text starts a fresh array.
WITH picked AS (
    SELECT seq, id, task_path, queue_name, priority, args, kwargs, backend, run_after,
        enqueued_at, started_at, attempts, max_attempts, worker_ids, errors, unique_key, options
    FROM vtasks_task
    WHERE queue_name = %(queue)s AND status = 'READY' AND available_at <= %(now)s
    ORDER BY priority DESC, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE vtasks_task AS t
SET status = 'RUNNING',
    claimed_by = %(process_id)s::text,
    attempts = t.attempts + 1,
    worker_ids = CASE
        WHEN t.worker_ids ~ '^\[.*\]$' AND t.worker_ids !~ '^\[\s*\]$'
            THEN left(t.worker_ids, -1) || ',' || to_json(%(process_id)s::text)::text || ']'
        ELSE '[' || to_json(%(process_id)s::text)::text || ']'
    END,
    started_at = COALESCE(t.started_at, %(now)s),
    last_attempted_at = %(now)s
FROM picked AS p
WHERE t.seq = p.seq
RETURNING p.*

-- name: claim_by_priority
-- Take up to limit due READY records of several queues as one pool (a queue selector such as
-- "email*"): each queue's best limit rows by its index (LATERAL, one range each), the best limit of
-- those, highest priority first, FIFO within a priority (seq is global). Rows locked in a queue's
-- range but not taken unlock at the end of the statement. Updated as in claim.
WITH candidate AS (
    SELECT c.*
    FROM unnest(%(queues)s::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT seq, id, task_path, queue_name, priority, args, kwargs, backend, run_after,
            enqueued_at, started_at, attempts, max_attempts, worker_ids, errors, unique_key,
            options
        FROM vtasks_task
        WHERE queue_name = q.name AND status = 'READY' AND available_at <= %(now)s
        ORDER BY priority DESC, seq
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS c
),
picked AS (
    SELECT * FROM candidate ORDER BY priority DESC, seq LIMIT %(limit)s
)
UPDATE vtasks_task AS t
SET status = 'RUNNING',
    claimed_by = %(process_id)s::text,
    attempts = t.attempts + 1,
    worker_ids = CASE
        WHEN t.worker_ids ~ '^\[.*\]$' AND t.worker_ids !~ '^\[\s*\]$'
            THEN left(t.worker_ids, -1) || ',' || to_json(%(process_id)s::text)::text || ']'
        ELSE '[' || to_json(%(process_id)s::text)::text || ']'
    END,
    started_at = COALESCE(t.started_at, %(now)s),
    last_attempted_at = %(now)s
FROM picked AS p
WHERE t.seq = p.seq
RETURNING p.*

-- name: known_queues
-- The queues holding READY records, for queue selectors: a skip scan of the partial READY index,
-- one index probe per queue (the next name after the last found), whatever the table's size.
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

-- name: finish
-- The fences compare claimed_by with IS NOT DISTINCT FROM on purpose: no index serves it, so the
-- planner looks records up by their unique id. With "=", a generic plan may scan the claimed_by
-- index instead, which holds an entry for every version a busy process ever claimed until
-- VACUUM passes (seconds per batch on a churning table).
-- Record a batch of outcomes in one statement. Each one applies only while its fence holds (same
-- process, still RUNNING, same attempt); the ids that applied come back, the rest were refused.
-- A final outcome whose expires_at is not after finished_at deletes the record instead of
-- updating it (two CTEs may not modify the same row), and a final outcome frees its unique lock.
WITH outcome AS (
    -- One JSON parameter (encoded by orjson in C) instead of ten arrays psycopg dumps in Python.
    SELECT *
    FROM jsonb_to_recordset(%(outcomes)s::jsonb) AS o(
        id text, attempt int, status text, errors text, available_at timestamptz,
        finished_at timestamptz, return_value text, expires_at timestamptz, unique_key text,
        drop_now bool
    )
),
dropped AS (
    DELETE FROM vtasks_task AS t
    USING outcome AS o
    WHERE o.drop_now AND t.id = o.id
      AND t.status = 'RUNNING' AND t.claimed_by IS NOT DISTINCT FROM %(process_id)s AND t.attempts = o.attempt
    RETURNING t.id
),
updated AS (
    UPDATE vtasks_task AS t
    SET status = o.status,
        claimed_by = NULL,
        errors = o.errors,
        available_at = COALESCE(o.available_at, t.available_at),
        finished_at = CASE WHEN o.status = 'READY' THEN t.finished_at ELSE o.finished_at END,
        return_value = CASE WHEN o.status = 'READY' THEN t.return_value ELSE o.return_value END,
        expires_at = CASE WHEN o.status = 'READY' THEN t.expires_at ELSE o.expires_at END
    FROM outcome AS o
    WHERE NOT o.drop_now AND t.id = o.id
      AND t.status = 'RUNNING' AND t.claimed_by IS NOT DISTINCT FROM %(process_id)s AND t.attempts = o.attempt
    RETURNING t.id
),
applied AS (
    SELECT id FROM dropped
    UNION ALL
    SELECT id FROM updated
),
unlocked AS (
    DELETE FROM vtasks_unique_lock AS l
    USING outcome AS o, applied AS a
    WHERE a.id = o.id AND o.status <> 'READY' AND l.key = o.unique_key AND l.task_id = o.id
)
SELECT id FROM applied

-- name: held_by
-- RUNNING claims of one process (after a claim whose reply was lost; rare, RUNNING rows are few).
SELECT id, queue_name, attempts
FROM vtasks_task
WHERE status = 'RUNNING' AND claimed_by = %(process_id)s AND queue_name = ANY(%(queues)s::text[])

-- name: hand_back
-- Return claims to READY without recording an attempt's end (shutdown); fenced like finish.
UPDATE vtasks_task AS t
SET status = 'READY', claimed_by = NULL
FROM unnest(%(ids)s::text[], %(attempts)s::int[]) AS c(id, attempt)
WHERE t.id = c.id
  AND t.status = 'RUNNING' AND t.claimed_by IS NOT DISTINCT FROM %(process_id)s AND t.attempts = c.attempt

-- name: defer
-- Undo claims whose task cannot start yet (its concurrency key is full): READY at until, with the
-- attempt, the worker id and a first start taken back. Fenced like hand_back.
UPDATE vtasks_task AS t
SET status = 'READY',
    claimed_by = NULL,
    attempts = c.attempt - 1,
    worker_ids = c.worker_ids,
    available_at = %(until)s,
    started_at = CASE WHEN c.attempt <= 1 THEN NULL ELSE t.started_at END,
    last_attempted_at = CASE WHEN c.attempt <= 1 THEN NULL ELSE t.last_attempted_at END
FROM unnest(%(ids)s::text[], %(attempts)s::int[], %(worker_ids)s::text[]) AS c(id, attempt, worker_ids)
WHERE t.id = c.id
  AND t.status = 'RUNNING' AND t.claimed_by IS NOT DISTINCT FROM %(process_id)s AND t.attempts = c.attempt

-- name: expedite
-- Make deferred READY records due now (their concurrency key has room again).
UPDATE vtasks_task
SET available_at = %(at)s
WHERE id = ANY(%(ids)s::text[]) AND status = 'READY' AND available_at > %(at)s

-- name: acquire_slots
-- Take one slot per (task_id, key, limit) request: the rank-th free slot number below the limit
-- for the rank-th request of a key in this batch. A concurrent taker of the same number wins
-- (ON CONFLICT DO NOTHING): the loser is refused this time. Rows already held by the task for
-- this process count as taken (idempotent). Returns the task ids that hold a slot.
WITH request AS (
    SELECT r.task_id, r.key, r.lim, r.ord
    FROM unnest(%(task_ids)s::text[], %(keys)s::text[], %(limits)s::int[])
        WITH ORDINALITY AS r(task_id, key, lim, ord)
),
held AS (
    SELECT r.task_id
    FROM request AS r
    WHERE EXISTS (
        SELECT 1 FROM vtasks_concurrency_slot AS s
        WHERE s.task_id = r.task_id AND s.key = r.key AND s.claimed_by = %(process_id)s
    )
),
wanted AS (
    SELECT r.task_id, r.key, r.lim, row_number() OVER (PARTITION BY r.key ORDER BY r.ord) AS rank
    FROM request AS r
    WHERE r.task_id NOT IN (SELECT task_id FROM held)
),
placed AS (
    SELECT w.task_id, w.key,
        (SELECT g FROM generate_series(0, w.lim - 1) AS g
         WHERE NOT EXISTS (
             SELECT 1 FROM vtasks_concurrency_slot AS s WHERE s.key = w.key AND s.slot = g
         )
         ORDER BY g OFFSET w.rank - 1 LIMIT 1) AS slot
    FROM wanted AS w
    -- Rows numbered past a lowered limit still count against it.
    WHERE (SELECT count(*) FROM vtasks_concurrency_slot AS s WHERE s.key = w.key) + w.rank <= w.lim
),
inserted AS (
    INSERT INTO vtasks_concurrency_slot (key, slot, task_id, claimed_by)
    SELECT p.key, p.slot, p.task_id, %(process_id)s FROM placed AS p WHERE p.slot IS NOT NULL
    ON CONFLICT (key, slot) DO NOTHING
    RETURNING task_id
)
SELECT task_id FROM inserted
UNION ALL
SELECT task_id FROM held

-- name: release_slots
DELETE FROM vtasks_concurrency_slot
WHERE task_id = ANY(%(ids)s::text[]) AND claimed_by = %(process_id)s

-- name: next_due
SELECT min(available_at) AS due
FROM vtasks_task
WHERE queue_name = ANY(%(queues)s::text[]) AND status = 'READY'

-- name: paused_queues
-- Queues that no worker claims from (DatabaseBackend.pause_queue); read at most once a second.
SELECT queue_name FROM vtasks_paused_queue

-- name: listen
LISTEN vtasks

-- name: register
INSERT INTO vtasks_process (id, kind, hostname, pid, queues, started_at, heartbeat_at, meta)
VALUES (%(id)s, %(kind)s, %(hostname)s, %(pid)s, %(queues)s, %(now)s, %(now)s, %(meta)s)
ON CONFLICT (id) DO UPDATE
SET kind = EXCLUDED.kind,
    hostname = EXCLUDED.hostname,
    pid = EXCLUDED.pid,
    queues = EXCLUDED.queues,
    started_at = EXCLUDED.started_at,
    heartbeat_at = EXCLUDED.heartbeat_at,
    meta = EXCLUDED.meta

-- name: heartbeat
UPDATE vtasks_process SET heartbeat_at = %(now)s WHERE id = %(id)s

-- name: deregister
DELETE FROM vtasks_process WHERE id = %(id)s

-- name: find_orphans
-- Prune the processes silent since cutoff, free their concurrency slots, and list RUNNING records
-- whose claimer is not a live
-- process (pruned now, or whose row vanished another way). One snapshot serves both parts, so the
-- live test repeats the prune condition rather than reading the table after the DELETE.
-- Every RUNNING record has claimed_by set and no other has, so the claimed_by index finds them.
WITH pruned AS (
    DELETE FROM vtasks_process WHERE heartbeat_at < %(cutoff)s RETURNING id
),
-- The concurrency slots of processes that are not alive go with them (same live test).
freed AS (
    DELETE FROM vtasks_concurrency_slot AS s
    WHERE NOT EXISTS (
        SELECT 1 FROM vtasks_process AS p
        WHERE p.id = s.claimed_by AND p.heartbeat_at >= %(cutoff)s
    )
)
SELECT 'process' AS kind, id, NULL::text AS claimed_by, NULL::int AS attempts,
    NULL::int AS max_attempts, NULL::text AS errors
FROM pruned
UNION ALL
SELECT 'task', t.id, t.claimed_by, t.attempts, t.max_attempts, t.errors
FROM vtasks_task AS t
WHERE t.claimed_by IS NOT NULL AND t.status = 'RUNNING'
  AND NOT EXISTS (
      SELECT 1 FROM vtasks_process AS p
      WHERE p.id = t.claimed_by AND p.heartbeat_at >= %(cutoff)s
  )

-- name: release_orphans
-- Release the orphans found above as failed attempts: READY now while attempts remain, else
-- FAILED (and their unique locks freed). The fence makes a concurrent recoverer, or the claimer
-- finishing after all, win cleanly: a record that changed meanwhile is left alone.
WITH orphan AS (
    SELECT *
    FROM unnest(
        %(ids)s::text[], %(claimed_by)s::text[], %(attempts)s::int[], %(statuses)s::text[],
        %(errors)s::text[]
    ) AS o(id, claimed_by, attempt, status, errors)
),
released AS (
    UPDATE vtasks_task AS t
    SET status = o.status,
        claimed_by = NULL,
        errors = o.errors,
        available_at = CASE WHEN o.status = 'READY' THEN %(now)s ELSE t.available_at END,
        finished_at = CASE WHEN o.status = 'FAILED' THEN %(now)s ELSE t.finished_at END
    FROM orphan AS o
    WHERE t.id = o.id
      AND t.status = 'RUNNING' AND t.claimed_by IS NOT DISTINCT FROM o.claimed_by AND t.attempts = o.attempt
    RETURNING t.id, t.status, t.unique_key
),
unlocked AS (
    DELETE FROM vtasks_unique_lock AS l
    USING released AS r
    WHERE r.status = 'FAILED' AND l.key = r.unique_key AND l.task_id = r.id
)
SELECT id, status FROM released
