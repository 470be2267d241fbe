-- Register a worker as waiting idle on its queues, until now + ttl (server time, ms): an enqueue
-- that finds it there claims a due message for it and pushes it to its inbox (enqueue.lua).
-- A single server only: the queues' idle sets sit in different hash slots (no cluster hand-off).
-- KEYS: the idle set of each queue
-- ARGV: process_id, ttl (ms)
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, deadline, ARGV[1])
end
return deadline
