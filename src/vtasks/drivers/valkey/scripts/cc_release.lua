-- Free concurrency slots of one key, each only while the named process still holds it (a late
-- release never frees a slot the task took again elsewhere).
-- KEYS: the key's slot hash
-- ARGV: task id and process id pairs
-- Returns the number of slots freed.
local freed = 0
for i = 1, #ARGV, 2 do
    if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
        redis.call('HDEL', KEYS[1], ARGV[i])
        freed = freed + 1
    end
end
return freed
