-- Prune the processes whose last heartbeat is before the cutoff.
-- KEYS: processes, queues, concurrency keys (the index of keys that may hold slots)
-- ARGV: process key prefix, cutoff (µs)
-- Returns {pruned ids, live ids, known queue names, concurrency keys}.
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
for _, id in ipairs(dead) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', ARGV[1] .. id)
end
return {dead, redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('SMEMBERS', KEYS[2]),
    redis.call('SMEMBERS', KEYS[3])}
