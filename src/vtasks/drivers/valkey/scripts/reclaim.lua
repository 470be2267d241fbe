-- Undo hand-offs that never reached their worker: the messages in one worker's inbox of one
-- queue (that worker stopped, or died while idle), plus the ids given, go back to READY at their
-- old place as if never claimed (no attempt counted: they never started). Only records still
-- RUNNING under that worker's first attempt are touched. The worker leaves the idle set and its
-- inbox is deleted.
-- KEYS: ready, running, wake, idle, inbox
-- ARGV: task_prefix, process_id, wake_cap, then ids of handed claims held outside the inbox
local task_prefix, pid, wake_cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('ZREM', KEYS[4], pid)
local ids = {}
for _, item in ipairs(redis.call('LRANGE', KEYS[5], 0, -1)) do
    ids[#ids + 1] = string.match(item, '^[^\n]*')
end
redis.call('DEL', KEYS[5])
for i = 4, #ARGV do
    ids[#ids + 1] = ARGV[i]
end
local returned = 0
for _, id in ipairs(ids) do
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 'status', 'claimed_by', 'attempts', 'score')
    if f[1] == 'RUNNING' and f[2] == pid and f[3] == '1' and f[4] then
        redis.call('HSET', key, 'status', 'READY')
        redis.call('HDEL', key, 'claimed_by', 'attempts', 'worker_ids', 'started_at',
            'last_attempted_at')
        redis.call('ZREM', KEYS[2], id)
        redis.call('ZADD', KEYS[1], f[4], id)
        returned = returned + 1
    end
end
if returned > 0 then
    local tokens = {}
    for n = 1, math.min(returned, wake_cap) do
        tokens[n] = '1'
    end
    if redis.call('LPUSH', KEYS[3], unpack(tokens)) > wake_cap then
        redis.call('LTRIM', KEYS[3], 0, wake_cap - 1)
    end
end
return returned
