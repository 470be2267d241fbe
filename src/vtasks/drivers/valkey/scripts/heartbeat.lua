-- Refresh a process's heartbeat; 0 when its row is gone (it was pruned: it must stop).
-- KEYS: processes
-- ARGV: process key, process id, now (µs)
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('HSET', ARGV[1], 'heartbeat_at', ARGV[3])
return 1
