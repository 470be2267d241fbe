-- Put orphaned tasks of one queue (RUNNING, claimed by a process that is gone) back to READY at
-- their old place (the admin's "retry" of an orphan). Fenced on the claimer: a task that its
-- claimer finished, or that a worker already recovered, is left as it is.
-- KEYS: ready, running, wake, paused
-- ARGV: task_prefix, wake_cap, now (µs), then pairs of task id and claimer
-- Returns one 1 (released) or 0 (the fence did not hold) per pair.
local task_prefix, wake_cap, now = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out, released = {}, 0
for i = 4, #ARGV, 2 do
    local id, claimer = ARGV[i], ARGV[i + 1]
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 'status', 'claimed_by', 'score')
    if f[1] == 'RUNNING' and f[2] == claimer and f[3] then
        redis.call('ZREM', KEYS[2], id)
        redis.call('HDEL', key, 'claimed_by')
        redis.call('HSET', key, 'status', 'READY', 'available_at', now)
        redis.call('ZADD', KEYS[1], f[3], id)
        released = released + 1
        out[#out + 1] = 1
    else
        out[#out + 1] = 0
    end
end
if redis.call('EXISTS', KEYS[4]) == 0 and released > 0 then
    for _ = 1, math.min(released, wake_cap) do
        redis.call('LPUSH', KEYS[3], '1')
    end
    redis.call('LTRIM', KEYS[3], 0, wake_cap - 1)
end
return out
