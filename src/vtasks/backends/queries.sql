-- The statements the database backend sends through Django's own connection (so an enqueue joins
-- the caller's transaction). Placeholders are Django's portable %s: SQLite, PostgreSQL and MySQL.

-- name: insert_task
-- One task, every NOT NULL column given: a plain INSERT costs a fraction of Model.save().
INSERT INTO vtasks_task (
    id, backend, task_path, queue_name, priority, status, args, kwargs, run_after, available_at,
    enqueued_at, attempts, max_attempts, worker_ids, errors, unique_key, options
) VALUES (%s, %s, %s, %s, %s, 'READY', %s, %s, %s, %s, %s, 0, %s, '[]', '[]', %s, %s)

-- name: insert_tasks_json
-- PostgreSQL bulk enqueue: the whole batch is one JSON parameter (encoded by orjson), so neither
-- Django nor psycopg quotes values one by one. ORDINALITY keeps FIFO: seq follows the call order.
INSERT INTO vtasks_task (
    id, backend, task_path, queue_name, priority, status, args, kwargs, run_after, available_at,
    enqueued_at, attempts, max_attempts, worker_ids, errors, unique_key, options
)
SELECT r.id, r.backend, r.task_path, r.queue_name, r.priority, 'READY', r.args, r.kwargs,
    r.run_after, r.available_at, r.enqueued_at, 0, r.max_attempts, '[]', '[]', r.unique_key, r.options
FROM ROWS FROM (
    json_to_recordset(%s::json) AS (
        id text, backend text, task_path text, queue_name text, priority int, args text,
        kwargs text, run_after timestamptz, available_at timestamptz, enqueued_at timestamptz,
        max_attempts int, unique_key text, options text
    )
) WITH ORDINALITY AS r(
    id, backend, task_path, queue_name, priority, args, kwargs, run_after, available_at,
    enqueued_at, max_attempts, unique_key, options, ord
)
ORDER BY r.ord
