-- Delete tasks of one queue with their records (the admin's "delete"). A RUNNING task is left
-- alone: its worker owns it until it finishes. A unique key still held by a deleted task is freed.
-- KEYS: ready, delayed, dead
-- ARGV: task_prefix, unique_prefix, then task ids
-- Returns one 1 (deleted) or 0 (running, or gone already) per id.
local task_prefix, unique_prefix = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV do
    local id = ARGV[i]
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 'status', 'unique_key')
    if f[1] == 'RUNNING' then
        out[#out + 1] = 0
    else
        redis.call('ZREM', KEYS[1], id)
        redis.call('ZREM', KEYS[2], id)
        redis.call('LREM', KEYS[3], 0, id)
        if f[2] and f[2] ~= '' and redis.call('GET', unique_prefix .. f[2]) == id then
            redis.call('DEL', unique_prefix .. f[2])
        end
        out[#out + 1] = redis.call('DEL', key)
    end
end
return out
