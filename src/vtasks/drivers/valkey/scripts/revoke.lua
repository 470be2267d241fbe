-- Revoke waiting tasks of one queue (Celery's revoke): each READY task, in the ready or the
-- delayed set, becomes FAILED with one more error (Revoked) and is never claimed. A RUNNING task
-- is left alone (its worker goes on); a finished or unknown one is not touched. Like a worker's
-- final outcome, it frees the unique key this task holds (a throttle key keeps its TTL: it was
-- never stored on the record), joins the capped dead-letter store and expires at expires_at.
-- It is counted as FAILED in the queue's per-minute finish counter, as finish.lua counts.
-- KEYS: ready, delayed, dead
-- ARGV: task_prefix, unique_prefix, dlq_cap, error (one JSON object), now (µs),
--   expires_at (µs, '' keeps the record), finished_prefix, finished_ttl (s), then task ids
-- Returns {1 (revoked) or 0 (not waiting) per id, dead letters evicted by the cap}.
local task_prefix, unique_prefix, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local revoked, now, expires_at = ARGV[4], ARGV[5], ARGV[6]
local finished_prefix, finished_ttl = ARGV[7], ARGV[8]
local out, evicted, failed = {}, 0, 0
for i = 9, #ARGV do
    local id = ARGV[i]
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 'status', 'errors', 'unique_key')
    if f[1] ~= 'READY' then
        out[#out + 1] = 0
    else
        redis.call('ZREM', KEYS[1], id)
        redis.call('ZREM', KEYS[2], id)
        -- errors is a compact JSON list written by vtasks: append without decoding it.
        local errors = f[2] and string.match(f[2], '^%s*%[(.-)%]%s*$')
        if not errors or string.match(errors, '^%s*$') then
            errors = '[' .. revoked .. ']'
        else
            errors = '[' .. errors .. ',' .. revoked .. ']'
        end
        redis.call('HSET', key, 'status', 'FAILED', 'errors', errors, 'finished_at', now)
        redis.call('HDEL', key, 'claimed_by')
        if f[3] and f[3] ~= '' and redis.call('GET', unique_prefix .. f[3]) == id then
            redis.call('DEL', unique_prefix .. f[3])
        end
        if expires_at ~= '' then
            redis.call('HSET', key, 'expires_at', expires_at)
            redis.call('PEXPIREAT', key, math.floor(tonumber(expires_at) / 1000))
        end
        redis.call('LPUSH', KEYS[3], id)
        while redis.call('LLEN', KEYS[3]) > cap do
            local old = redis.call('RPOP', KEYS[3])
            if redis.call('HGET', task_prefix .. old, 'status') == 'FAILED' then
                redis.call('DEL', task_prefix .. old)
            end
            evicted = evicted + 1
        end
        failed = failed + 1
        out[#out + 1] = 1
    end
end
if failed > 0 then
    local counter = finished_prefix .. string.format('%d', math.floor(tonumber(now) / 60000000))
    if redis.call('HINCRBY', counter, 'FAILED', failed) == failed then
        redis.call('EXPIRE', counter, finished_ttl)
    end
end
return {out, evicted}
