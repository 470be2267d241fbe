-- List the RUNNING records of one queue whose claimer is not among the live processes.
-- KEYS: running
-- ARGV: task_prefix, then the live process ids
-- Returns per orphan: id, claimed_by, attempts, max_attempts, errors.
local task_prefix = ARGV[1]
local live = {}
for i = 2, #ARGV do
    live[ARGV[i]] = true
end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local f = redis.call('HMGET', task_prefix .. id, 'status', 'claimed_by', 'attempts',
        'max_attempts', 'errors')
    if f[1] ~= 'RUNNING' then
        redis.call('ZREM', KEYS[1], id)  -- a stale entry (the record expired or was deleted)
    elseif not live[f[2]] then
        out[#out + 1] = {id, f[2] or '', f[3] or '0', f[4] or '1', f[5] or '[]'}
    end
end
return out
