-- Make waiting tasks of one queue due now (the admin's "run now"): each keeps its place in the
-- delayed set, scored now, so the next claim promotes it like any due message.
-- KEYS: delayed, wake, paused
-- ARGV: task_prefix, wake_cap, now (µs), then task ids
-- Returns one 1 (due now) or 0 (not waiting: ready already, running, finished or gone) per id.
local task_prefix, wake_cap, now = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out, moved = {}, 0
for i = 4, #ARGV do
    local id = ARGV[i]
    local key = task_prefix .. id
    if redis.call('ZSCORE', KEYS[1], id) and redis.call('HGET', key, 'status') == 'READY' then
        redis.call('ZADD', KEYS[1], now, id)
        redis.call('HSET', key, 'available_at', now)
        moved = moved + 1
        out[#out + 1] = 1
    else
        out[#out + 1] = 0
    end
end
if redis.call('EXISTS', KEYS[3]) == 0 and moved > 0 then
    for _ = 1, math.min(moved, wake_cap) do
        redis.call('LPUSH', KEYS[2], '1')
    end
    redis.call('LTRIM', KEYS[2], 0, wake_cap - 1)
end
return out
