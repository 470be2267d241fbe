-- Prune the processes whose last heartbeat is before the cutoff.
-- KEYS: processes, queues
-- ARGV: process key prefix, cutoff (µs)
-- Returns {pruned ids, live ids, known queue names}.
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
for _, id in ipairs(dead) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', ARGV[1] .. id)
end
return {dead, redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('SMEMBERS', KEYS[2])}
