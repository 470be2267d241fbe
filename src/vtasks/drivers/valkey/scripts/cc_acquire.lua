-- Take one of a concurrency key's slots for a task: a field task id -> process id in the key's
-- hash, while the hash has fewer than limit fields. Idempotent for the same process.
-- KEYS: the key's slot hash
-- ARGV: task_id, process_id, limit
-- Returns 1 (held) or 0 (the key is full, or a stale holder of this task awaits the reaper).
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
    if held == ARGV[2] then
        return 1
    end
    return 0
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
