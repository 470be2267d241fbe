-- Claim up to limit messages of one queue for one process: first what an enqueue handed to it
-- (its inbox: claimed already, see enqueue.lua), then promote due delayed messages and pop the
-- best-scored ready ones, marking them RUNNING under the process's lease.
-- A paused queue (its flag key exists) gives nothing new: checked here, so pausing costs no round
-- trip. A claim that fills the limit takes the process off the idle set: it has no room left.
-- KEYS: ready, delayed, running, paused, idle, inbox
-- ARGV: task_prefix, limit, process_id, process_id as JSON, now (µs), promote_max
-- Returns per claim either a handed message as its inbox item (text) or: id, message, attempts
-- before, worker_ids before, errors, started_at, max_attempts, unique_key; a first attempt with
-- no unique key (no attempts, worker_ids or errors before, started now) as id, message and
-- max_attempts alone (each value returned costs the worker an object to build and check).
local task_prefix, limit, pid, pid_json = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local now, promote_max = ARGV[5], tonumber(ARGV[6])
local out = {}
while #out < limit do
    local item = redis.call('LPOP', KEYS[6])
    if not item then
        break
    end
    -- Still ours? (a hand-back or a recovery may have moved it on since)
    local f = redis.call('HMGET', task_prefix .. string.match(item, '^[^\n]*'), 'status',
        'claimed_by')
    if f[1] == 'RUNNING' and f[2] == pid then
        out[#out + 1] = item
    end
end
if #out >= limit then
    redis.call('ZREM', KEYS[5], pid)
    return out
end
if redis.call('EXISTS', KEYS[4]) == 1 then
    return out
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
                'attempts', string.format('%d', attempts + 1), 'worker_ids', worker_ids,
                'started_at', started, 'last_attempted_at', now)
            redis.call('ZADD', KEYS[3], now, id)
            local errors, unique_key = f[5] or '[]', f[8] or ''
            if attempts == 0 and before == '' and errors == '[]' and started == now
                and unique_key == '' then
                out[#out + 1] = {id, f[1], f[7] or '1'}
            else
                out[#out + 1] = {id, f[1], string.format('%d', attempts), before, errors, started,
                    f[7] or '1', unique_key}
            end
        end
    end
end
if #out >= limit then
    redis.call('ZREM', KEYS[5], pid)
end
return out
