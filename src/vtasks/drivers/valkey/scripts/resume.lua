-- Resume a paused queue and wake idle workers for what waited meanwhile (tokens are not pushed
-- while a queue is paused).
-- KEYS: paused, ready, delayed, wake
-- ARGV: wake_cap, now (µs)
-- Returns 1 when the queue was paused.
local was = redis.call('DEL', KEYS[1])
local waiting = redis.call('ZCARD', KEYS[2]) + redis.call('ZCOUNT', KEYS[3], '-inf', ARGV[2])
local wake_cap = tonumber(ARGV[1])
for _ = 1, math.min(waiting, wake_cap) do
    redis.call('LPUSH', KEYS[4], '1')
end
if waiting > 0 then
    redis.call('LTRIM', KEYS[4], 0, wake_cap - 1)
end
return was
