-- Record a batch of outcomes of one queue. Each applies only while its fence holds (the record
-- is RUNNING, claimed by the given process, at the given attempt).
-- Also used to release the claims of dead processes (the claimer is named per outcome).
-- A retry (READY again, whether from a worker's outcome or a dead claimer's release) pushes one
-- wake-up token: an idle worker then wakes, finds the retry's due time with next_due and sleeps
-- just until then, instead of noticing it only at its next poll.
-- Final outcomes are also counted per minute of their finish time and status, in one hash per
-- queue and minute (finished_prefix .. epoch minute; fields SUCCESSFUL, FAILED) that expires
-- finished_ttl seconds after its first count: the dashboard's throughput. Summed here first, so a
-- batch costs one HINCRBY per minute and status (one, mostly), not one per task.
-- KEYS: delayed, running, dead, wake
-- ARGV: task_prefix, unique_prefix, dlq_cap, wake_cap, finished_prefix, finished_ttl (s),
--   claimed_by of the plain successes, their count n, then n plain successes of 4 values:
--   id, attempt, at (µs: the finish time), return_value (JSON text),
--   then per other outcome 9 values:
--   id, claimed_by, attempt, status (READY/SUCCESSFUL/FAILED), errors (JSON text),
--   at (µs: retry time for READY, finish time otherwise), return_value ('' none),
--   expires_at (µs, '' keeps the record), drop ('1': delete the finished record now)
-- A plain success (kept with no expiry: a worker's usual outcome) takes 4 values, and its record's
-- errors stay as they are (the earlier attempts' errors, which is what it would write): every
-- value sent costs the client a formatted length and the server a string.
-- Returns {1 (applied) or 0 (refused) per outcome in order (the plain successes first), dead
-- letters evicted by the cap}.
local task_prefix, unique_prefix, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local wake_cap, finished_prefix, finished_ttl = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local plain_by, plain_n = ARGV[7], tonumber(ARGV[8])
local applied, n_results, evicted, retried = {}, 0, 0, false
local finished = {}  -- epoch minute -> status -> count
-- Applied outcomes leave the running set by one ZREM per 500 (a command per task costs more).
local done, done_n = {}, 0
local function leave_running()
    if done_n > 0 then
        redis.call('ZREM', KEYS[2], unpack(done, 1, done_n))
        done, done_n = {}, 0
    end
end

-- errors: nil leaves the record's as they are (a plain success).
local function apply(id, claimed_by, attempt, status, errors, at, return_value, expires_at, drop)
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 'status', 'claimed_by', 'attempts', 'unique_key')
    n_results = n_results + 1
    if f[1] ~= 'RUNNING' or f[2] ~= claimed_by or tonumber(f[3]) ~= tonumber(attempt) then
        applied[n_results] = 0
        return
    end
    applied[n_results] = 1
    done_n = done_n + 1
    done[done_n] = id
    if done_n == 500 then
        leave_running()
    end
    redis.call('HDEL', key, 'claimed_by')
    if status == 'READY' then
        redis.call('HSET', key, 'status', 'READY', 'errors', errors, 'available_at', at)
        redis.call('ZADD', KEYS[1], at, id)
        retried = true
        return
    end
    local minute = math.floor(tonumber(at) / 60000000)
    local counts = finished[minute]
    if not counts then
        counts = {}
        finished[minute] = counts
    end
    counts[status] = (counts[status] or 0) + 1
    -- A final outcome frees the unique key, if this task still holds it.
    if f[4] and f[4] ~= '' and redis.call('GET', unique_prefix .. f[4]) == id then
        redis.call('DEL', unique_prefix .. f[4])
    end
    if drop == '1' then
        redis.call('DEL', key)
        return
    end
    local with_value = status == 'SUCCESSFUL' and return_value ~= ''
    if not errors then
        if with_value then
            redis.call('HSET', key, 'status', status, 'finished_at', at, 'return_value',
                return_value)
        else
            redis.call('HSET', key, 'status', status, 'finished_at', at)
        end
    elseif with_value then
        redis.call('HSET', key, 'status', status, 'errors', errors, 'finished_at', at,
            'return_value', return_value)
    else
        redis.call('HSET', key, 'status', status, 'errors', errors, 'finished_at', at)
    end
    if expires_at ~= '' then
        redis.call('HSET', key, 'expires_at', expires_at)
        redis.call('PEXPIREAT', key, math.floor(tonumber(expires_at) / 1000))
    end
    if status == 'FAILED' then
        -- The dead-letter store keeps the newest cap failures; older ones go.
        redis.call('LPUSH', KEYS[3], id)
        while redis.call('LLEN', KEYS[3]) > cap do
            local old = redis.call('RPOP', KEYS[3])
            if redis.call('HGET', task_prefix .. old, 'status') == 'FAILED' then
                redis.call('DEL', task_prefix .. old)
            end
            evicted = evicted + 1
        end
    end
end

local first_general = 9 + plain_n * 4
for i = 9, first_general - 1, 4 do
    apply(ARGV[i], plain_by, ARGV[i + 1], 'SUCCESSFUL', nil, ARGV[i + 2], ARGV[i + 3], '', '0')
end
for i = first_general, #ARGV, 9 do
    apply(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6],
        ARGV[i + 7], ARGV[i + 8])
end
leave_running()
for minute, counts in pairs(finished) do
    local key = finished_prefix .. string.format('%d', minute)
    for status, n in pairs(counts) do
        -- The field's first count (created with it, or the first of its status) sets the expiry.
        if redis.call('HINCRBY', key, status, n) == n then
            redis.call('EXPIRE', key, finished_ttl)
        end
    end
end
if retried then
    redis.call('LPUSH', KEYS[4], '1')
    redis.call('LTRIM', KEYS[4], 0, wake_cap - 1)
end
return {applied, evicted}
