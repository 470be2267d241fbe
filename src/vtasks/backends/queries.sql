-- The statements the database backend sends through Django's own connection (so an enqueue joins
-- the caller's transaction). Placeholders are Django's portable %s: SQLite, PostgreSQL and MySQL.

-- name: insert_task
-- One task, every NOT NULL column given: a plain INSERT costs a fraction of Model.save().
INSERT INTO vtasks_task (
    id, backend, task_path, queue_name, priority, status, args, kwargs, run_after, available_at,
    enqueued_at, attempts, max_attempts, worker_ids, errors, unique_key, options
) VALUES (%s, %s, %s, %s, %s, 'READY', %s, %s, %s, %s, %s, 0, %s, '[]', '[]', %s, %s)

-- name: copy_tasks
-- PostgreSQL bulk enqueue: COPY, the fastest way into a table (about twice an INSERT ... SELECT
-- from one JSON parameter). Rows are the insert_task parameters followed by the constant columns,
-- in call order, so seq keeps FIFO. The NOTIFY trigger fires once for the statement.
COPY vtasks_task (
    id, backend, task_path, queue_name, priority, args, kwargs, run_after, available_at,
    enqueued_at, max_attempts, unique_key, options, status, attempts, worker_ids, errors
) FROM STDIN
