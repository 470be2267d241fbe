-- Claim up to limit messages of one queue for one process: promote due delayed messages, then
-- pop the best-scored ready ones and mark them RUNNING under the process's lease.
-- A paused queue (its flag key exists) gives nothing: checked here, so pausing costs no round trip.
-- KEYS: ready, delayed, running, paused
-- ARGV: task_prefix, limit, process_id, process_id as JSON, now (µs), promote_max
-- Returns per claim: id, message, attempts before, worker_ids before, errors, started_at,
-- max_attempts, unique_key.
local task_prefix, limit, pid, pid_json = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local now, promote_max = ARGV[5], tonumber(ARGV[6])
if redis.call('EXISTS', KEYS[4]) == 1 then
    return {}
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, promote_max)
for _, id in ipairs(due) do
    local score = redis.call('HGET', task_prefix .. id, 'score')
    if score then
        redis.call('ZADD', KEYS[1], score, id)
    end
end
if #due > 0 then
    redis.call('ZREM', KEYS[2], unpack(due))
end
local out = {}
while #out < limit do
    local popped = redis.call('ZPOPMIN', KEYS[1], limit - #out)
    if #popped == 0 then
        break
    end
    for i = 1, #popped, 2 do
        local id = popped[i]
        local key = task_prefix .. id
        local f = redis.call('HMGET', key, 'msg', 'status', 'attempts', 'worker_ids', 'errors',
            'started_at', 'max_attempts', 'unique_key')
        -- A vanished or non-READY record is a stale entry: drop it and go on.
        if f[1] and f[2] == 'READY' then
            local attempts = tonumber(f[3]) or 0
            local before = f[4] or ''
            -- Appended as text, never parsed: a malformed value starts a fresh array, and the
            -- worker reports it (the SQL drivers do the same).
            local worker_ids
            if string.match(before, '^%[.*%]$') and not string.match(before, '^%[%s*%]$') then
                worker_ids = string.sub(before, 1, -2) .. ',' .. pid_json .. ']'
            else
                worker_ids = '[' .. pid_json .. ']'
            end
            local started = f[6]
            if not started or started == '' then
                started = now
            end
            redis.call('HSET', key, 'status', 'RUNNING', 'claimed_by', pid,
                'attempts', tostring(attempts + 1), 'worker_ids', worker_ids,
                'started_at', started, 'last_attempted_at', now)
            redis.call('ZADD', KEYS[3], now, id)
            out[#out + 1] = {id, f[1], tostring(attempts), before, f[5] or '[]', started,
                f[7] or '1', f[8] or ''}
        end
    end
end
return out
