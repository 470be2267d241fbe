-- Remove up to limit waiting messages of one queue (ready, then delayed, then, when asked, the
-- dead letters) with their records; RUNNING records are never touched. A removed message's unique
-- key is freed if it still holds it. Called until it returns 0, so no call holds the server long.
-- KEYS: ready, delayed, dead
-- ARGV: task_prefix, unique_prefix, limit, dead too ('1'/'0')
-- Returns how many entries were taken off the sets and list in this call.
local task_prefix, unique_prefix, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local taken = 0

local function remove(id, wanted)
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 'status', 'unique_key')
    if f[1] == wanted then
        if f[2] and f[2] ~= '' and redis.call('GET', unique_prefix .. f[2]) == id then
            redis.call('DEL', unique_prefix .. f[2])
        end
        redis.call('DEL', key)
    end
end

for _, set in ipairs({KEYS[1], KEYS[2]}) do
    if taken < limit then
        local ids = redis.call('ZRANGE', set, 0, limit - taken - 1)
        for _, id in ipairs(ids) do
            remove(id, 'READY')
        end
        if #ids > 0 then
            redis.call('ZREM', set, unpack(ids))
        end
        taken = taken + #ids
    end
end
if ARGV[4] == '1' then
    while taken < limit do
        local id = redis.call('RPOP', KEYS[3])
        if not id then
            break
        end
        remove(id, 'FAILED')
        taken = taken + 1
    end
end
return taken
