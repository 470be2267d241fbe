-- Undo claims whose task cannot start yet (its concurrency key is full): READY again at until
-- (through the delayed set, keeping its place by its score), with the attempt, the worker id and
-- a first start taken back. Fenced like hand_back.
-- KEYS: delayed, running
-- ARGV: task_prefix, process_id, until (µs), then id, attempt, worker_ids (JSON) triples
local task_prefix, pid, due = ARGV[1], ARGV[2], ARGV[3]
local deferred = 0
for i = 4, #ARGV, 3 do
    local id, attempt, worker_ids = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 'status', 'claimed_by', 'attempts')
    if f[1] == 'RUNNING' and f[2] == pid and tonumber(f[3]) == attempt then
        redis.call('HSET', key, 'status', 'READY', 'attempts', tostring(attempt - 1),
            'worker_ids', worker_ids, 'available_at', due)
        redis.call('HDEL', key, 'claimed_by')
        if attempt <= 1 then
            redis.call('HDEL', key, 'started_at', 'last_attempted_at')
        end
        redis.call('ZREM', KEYS[2], id)
        redis.call('ZADD', KEYS[1], due, id)
        deferred = deferred + 1
    end
end
return deferred
