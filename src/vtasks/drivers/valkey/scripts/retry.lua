-- Put FAILED tasks of one queue back to READY, at their old place in the queue, errors kept.
-- The record loses its finish fields and its expiry; a task that released a unique key on
-- finishing takes it again, and stays FAILED when another task holds it now.
-- KEYS: ready, dead, wake
-- ARGV: task_prefix, unique_prefix, wake_cap, now (µs), then task ids
-- Returns one 1 (retried) or 0 (not FAILED, gone, or its unique key is taken) per id.
local task_prefix, unique_prefix, wake_cap, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local out, retried = {}, 0
for i = 5, #ARGV do
    local id = ARGV[i]
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 'status', 'score', 'unique_key')
    local ok = f[1] == 'FAILED' and f[2] ~= false
    if ok and f[3] and f[3] ~= '' then
        local holder = redis.call('GET', unique_prefix .. f[3])
        if holder and holder ~= id then
            ok = false
        elseif not holder then
            redis.call('SET', unique_prefix .. f[3], id)
        end
    end
    if ok then
        redis.call('PERSIST', key)
        redis.call('HDEL', key, 'finished_at', 'expires_at', 'return_value', 'claimed_by')
        redis.call('HSET', key, 'status', 'READY', 'available_at', now)
        redis.call('ZADD', KEYS[1], f[2], id)
        redis.call('LREM', KEYS[2], 0, id)
        retried = retried + 1
        out[#out + 1] = 1
    else
        if f[1] ~= 'FAILED' then
            redis.call('LREM', KEYS[2], 0, id)  -- a stale dead letter (retried or expired)
        end
        out[#out + 1] = 0
    end
end
for _ = 1, math.min(retried, wake_cap) do
    redis.call('LPUSH', KEYS[3], '1')
end
if retried > 0 then
    redis.call('LTRIM', KEYS[3], 0, wake_cap - 1)
end
return out
