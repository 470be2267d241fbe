-- Return claims to READY at their old place without counting an attempt's end (shutdown).
-- Fenced like finish: only the claiming process's current attempt is handed back.
-- KEYS: ready, running, wake
-- ARGV: task_prefix, process_id, wake_cap, then id and attempt pairs
local task_prefix, pid, wake_cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local returned = 0
for i = 4, #ARGV, 2 do
    local id, attempt = ARGV[i], ARGV[i + 1]
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 'status', 'claimed_by', 'attempts', 'score')
    if f[1] == 'RUNNING' and f[2] == pid and tonumber(f[3]) == tonumber(attempt) then
        redis.call('HSET', key, 'status', 'READY')
        redis.call('HDEL', key, 'claimed_by')
        redis.call('ZREM', KEYS[2], id)
        redis.call('ZADD', KEYS[1], f[4], id)
        returned = returned + 1
    end
end
if returned > 0 then
    redis.call('LPUSH', KEYS[3], '1')
    redis.call('LTRIM', KEYS[3], 0, wake_cap - 1)
end
return returned
