-- Enqueue a batch of messages into one queue; unique keys are taken in the same step.
-- A paused queue gets no wake-up tokens (nobody could claim what they announce).
-- KEYS: ready, delayed, seq, wake, paused, idle, running[, slot guard]
-- ARGV: task_prefix, unique_prefix, wake_cap, inbox_prefix, stride (2, 6 or 9), then per message
--   `stride` values: id, message, priority, available_at (µs), delayed ('1': wait in the delayed
--   set), max_attempts, and with a stride of 9: unique key ('' none), unique ttl in ms ('' none),
--   release on finish ('1'/'0'); then, with a slot guard key only: slot (µs), guard ttl (ms).
--   A chunk without unique keys takes stride 6: each argument costs the server about as much
--   as a field of the record. A chunk whose messages also share priority, available_at, delayed
--   and max_attempts (a bulk enqueue of one task) takes stride 2: those four come once, before
--   the messages, and each message is its id and message alone.
-- Returns, with a stride of 9 (unique keys) or a slot guard, one 1 (stored) or 0 (its unique key
-- is taken) per message, in order; otherwise every message is stored and it returns their count
-- (the table of ones cost the server 880 of a message's 25,060 instructions; callgrind).
-- The ready score is (100 - priority) * 2^44 + sequence: higher priority first, FIFO within one;
-- every value stays an exact integer in a double.
-- Hand-off: while nothing waits in the ready set and the queue is not paused, a due message is
-- claimed here for a worker waiting idle on the queue (the idle set, deadlines in server ms) and
-- pushed to that worker's inbox, which its blocking pop is watching: it starts without a claim
-- round trip. The record is RUNNING under that worker's lease exactly as claim.lua leaves it, so
-- every recovery path holds (handoff.py). Once one message of the batch goes to the ready set,
-- the rest follow it there (FIFO).
-- Slot guard (a schedule firing): with an 8th key (the schedule's last fired slot), the last two
-- ARGV are the slot (µs) and that key's time to live (ms). The messages are pushed only when the
-- slot is later than the one stored, which then becomes the stored one: claiming the slot and
-- pushing are one step. A refused slot returns an empty list and pushes nothing.
local task_prefix, unique_prefix, wake_cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local inbox_prefix, stride = ARGV[4], tonumber(ARGV[5])
local last_arg = #ARGV
if KEYS[8] then
    local slot = ARGV[#ARGV - 1]
    local fired = redis.call('GET', KEYS[8])
    if fired and tonumber(fired) >= tonumber(slot) then
        return {}
    end
    redis.call('SET', KEYS[8], slot, 'PX', ARGV[#ARGV])
    last_arg = #ARGV - 2
end
local paused = redis.call('EXISTS', KEYS[5]) == 1
-- Hand-off only to a queue with no backlog and some worker waiting (checked per message). The
-- backlog (nil: not looked at yet) is counted only once a worker waits: each command a script
-- sends costs the server microseconds, and most enqueues find no idle worker.
local backlog = paused or nil
local now_ms

-- The worker that registered last and is still within its deadline; expired entries go.
local function idle_worker()
    if backlog or redis.call('EXISTS', KEYS[6]) == 0 then
        return nil
    end
    if backlog == nil then
        backlog = redis.call('ZCARD', KEYS[1]) > 0
        if backlog then
            return nil
        end
    end
    if not now_ms then
        local t = redis.call('TIME')
        now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    local top = redis.call('ZPOPMAX', KEYS[6])
    if tonumber(top[2]) < now_ms then
        redis.call('DEL', KEYS[6])  -- the latest deadline has passed: so have all the others
        return nil
    end
    return top[1]
end

-- Values a stride-2 chunk shares (the others read theirs per message).
local first_arg, shared = 6, stride == 2
local priority, available_at, delayed, max_attempts, base
if shared then
    priority, available_at, delayed, max_attempts = tonumber(ARGV[6]), ARGV[7], ARGV[8], ARGV[9]
    base = (100 - priority) * 17592186044416
    first_arg = 10
end
-- One INCRBY reserves a sequence number per message (a refused one leaves a gap; order holds).
local count = (last_arg - first_arg + 1) / stride
local seq = redis.call('INCRBY', KEYS[3], count) - count
-- Counters index the tables: Lua's # operator searches the table each time.
local results, n_results, ready_count = {}, 0, 0
local flags = stride == 9 or KEYS[8] ~= nil
-- Ready members go in by one ZADD per 500 (a command per message costs the server more than the
-- message's own work; 1,000 arguments stay far below Lua's stack limit).
local ready, ready_n = {}, 0
local function add_ready()
    if ready_n > 0 then
        redis.call('ZADD', KEYS[1], unpack(ready, 1, ready_n))
        ready, ready_n = {}, 0
    end
end
for i = first_arg, last_arg, stride do
    local id, msg = ARGV[i], ARGV[i + 1]
    if not shared then
        priority, available_at, delayed, max_attempts = tonumber(ARGV[i + 2]), ARGV[i + 3],
            ARGV[i + 4], ARGV[i + 5]
        base = (100 - priority) * 17592186044416
    end
    local ukey, uttl, release = '', '', '0'
    if stride == 9 then
        ukey, uttl, release = ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
    end
    local taken = true
    if ukey ~= '' then
        if uttl ~= '' then
            taken = redis.call('SET', unique_prefix .. ukey, id, 'NX', 'PX', uttl)
        else
            taken = redis.call('SET', unique_prefix .. ukey, id, 'NX')
        end
    end
    if taken then
        seq = seq + 1
        -- '%d' (a C long; exact, as the score stays below 2^53): '%.0f' and tostring format
        -- a double, several times the cost per message.
        local score = string.format('%d', base + seq)
        local key = task_prefix .. id
        -- attempts, worker_ids and errors start absent: every reader takes 0 / [] for them.
        redis.call('HSET', key, 'msg', msg, 'score', score, 'status', 'READY',
            'max_attempts', max_attempts, 'available_at', available_at)
        if ukey ~= '' and release == '1' then
            redis.call('HSET', key, 'unique_key', ukey)
        end
        local worker = not backlog and delayed ~= '1' and idle_worker()
        if delayed == '1' then
            redis.call('ZADD', KEYS[2], available_at, id)
        elseif worker then
            -- Claimed as claim.lua would: first attempt, this worker's lease, started now.
            redis.call('HSET', key, 'status', 'RUNNING', 'claimed_by', worker, 'attempts', '1',
                'worker_ids', '[' .. cjson.encode(worker) .. ']', 'started_at', available_at,
                'last_attempted_at', available_at)
            redis.call('ZADD', KEYS[7], available_at, id)
            local held = (release == '1') and ukey or ''
            local inbox = inbox_prefix .. worker
            redis.call('RPUSH', inbox, id .. '\n' .. available_at .. '\n' .. max_attempts .. '\n'
                .. #held .. '\n' .. held .. msg)
            redis.call('PEXPIRE', inbox, 3600000)
        else
            ready[ready_n + 1], ready[ready_n + 2], ready_n = score, id, ready_n + 2
            if ready_n == 1000 then
                add_ready()
            end
            ready_count = ready_count + 1
            backlog = true
        end
        n_results = n_results + 1
        if flags then
            results[n_results] = 1
        end
    else
        n_results = n_results + 1
        results[n_results] = 0
    end
end
add_ready()
-- One token per ready message, up to wake_cap in the list, wakes that many blocked workers;
-- stale tokens cost an idle worker one empty claim each, so the list stays short. Under a
-- backlog the list is full: one LLEN, no push.
if paused then
    ready_count = 0
end
if ready_count > 0 then
    local room = wake_cap - redis.call('LLEN', KEYS[4])
    if room > 0 then
        local tokens = {}
        for n = 1, math.min(ready_count, room) do
            tokens[n] = '1'
        end
        redis.call('LPUSH', KEYS[4], unpack(tokens))
    end
end
if not flags then
    return n_results
end
return results
