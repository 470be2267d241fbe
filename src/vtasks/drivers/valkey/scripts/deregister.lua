-- Remove a process row.
-- KEYS: processes
-- ARGV: process key, process id
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('DEL', ARGV[1])
return 1
