-- One queue's depth: counts, whether it is paused, and when its longest-waiting due message
-- became due. Due delayed messages (not promoted yet: claims promote them) count as ready.
-- The oldest ready message is looked for among the head of each priority band (at most 201
-- ZRANGEBYSCORE calls, never a scan): the FIFO head of a band is its oldest, except that a retried
-- or promoted delayed message keeps its enqueue-time place and counts from when it became due.
-- KEYS: ready, delayed, running, dead, paused
-- ARGV: task_prefix, now (µs)
-- Returns {ready, delayed, running, dead, paused (0/1), oldest available_at (µs) or ''}.
local task_prefix, now = ARGV[1], ARGV[2]
local band = 17592186044416  -- 2^44: the width of one priority band in a ready score
local due = redis.call('ZCOUNT', KEYS[2], '-inf', now)
local oldest = nil
local first_due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if #first_due > 0 then
    oldest = tonumber(first_due[2])
end
local from = '-inf'
while true do
    local head = redis.call('ZRANGEBYSCORE', KEYS[1], from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #head == 0 then
        break
    end
    local at = tonumber(redis.call('HGET', task_prefix .. head[1], 'available_at'))
    if at and (oldest == nil or at < oldest) then
        oldest = at
    end
    from = string.format('%.0f', (math.floor(tonumber(head[2]) / band) + 1) * band)
end
return {
    redis.call('ZCARD', KEYS[1]) + due,
    redis.call('ZCARD', KEYS[2]) - due,
    redis.call('ZCARD', KEYS[3]),
    redis.call('LLEN', KEYS[4]),
    redis.call('EXISTS', KEYS[5]),
    oldest and string.format('%.0f', oldest) or '',
}
