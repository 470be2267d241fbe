-- Register (or re-register) a process: its row replaced, its heartbeat set, its queues known.
-- KEYS: processes, queues
-- ARGV: process key, process id, now (µs), kind, hostname, pid, queues JSON, meta JSON,
--   then the queue names
redis.call('DEL', ARGV[1])
redis.call('HSET', ARGV[1], 'id', ARGV[2], 'kind', ARGV[4], 'hostname', ARGV[5], 'pid', ARGV[6],
    'queues', ARGV[7], 'meta', ARGV[8], 'started_at', ARGV[3], 'heartbeat_at', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
for i = 9, #ARGV do
    redis.call('SADD', KEYS[2], ARGV[i])
end
return 1
