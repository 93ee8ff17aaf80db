-- Load script for wrk (LuaJIT): cycles through a file of paths, counts every status code per
-- thread, and stops each thread cleanly (no request left in flight) after a duration, a request
-- budget, or when the bench asks it to, so the server's ping count can be compared exactly with the
-- 2xx answers counted here.
--
-- Configured through the environment, because wrk also calls request() in a state where init() has
-- not run and so args are not available there:
--   BENCH_MODE        get | post | pairs | create   (default get)
--   BENCH_PATHS       file with one path per line (get, post, pairs)
--   BENCH_THREADS     wrk's -t, used to split the budget and the rate between threads
--   BENCH_DURATION    seconds each thread sends for, from its first request (0 = no limit)
--   BENCH_BUDGET      requests in total over all threads (0 = no limit)
--   BENCH_RATE        offered requests per second in total, paced with delay() (0 = closed loop)
--   BENCH_BODY_BYTES  body size for post mode
--   BENCH_PREFIX      name prefix for create mode; BENCH_OFFSET its first number
--   BENCH_SYNC_DIR    directory: done-<id> files written here, a file named "stop" is obeyed
-- done() prints lines starting with "BENCH " that bench/wrk.py parses.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clk_id, bench_timespec_t *tp);
typedef struct { uint64_t count; uint64_t limit; uint64_t min; uint64_t max; uint64_t data[1]; } bench_stats_t;
]]

-- CLOCK_MONOTONIC: the same clock as Python's time.monotonic(), so both sides can be correlated.
local ts = ffi.new("bench_timespec_t")
local function now()
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local function env_number(name, default)
    local value = os.getenv(name)
    if value == nil or value == "" then
        return default
    end
    return tonumber(value)
end

local MODE = os.getenv("BENCH_MODE") or "get"
local PATHS = os.getenv("BENCH_PATHS")
local THREADS = env_number("BENCH_THREADS", 1)
local DURATION = env_number("BENCH_DURATION", 0)
local BUDGET = env_number("BENCH_BUDGET", 0)
local RATE = env_number("BENCH_RATE", 0)
local BODY_BYTES = env_number("BENCH_BODY_BYTES", 1024)
local PREFIX = os.getenv("BENCH_PREFIX") or "bench"
local OFFSET = env_number("BENCH_OFFSET", 0)
local SYNC_DIR = os.getenv("BENCH_SYNC_DIR") or "."
-- An idle connection waits this long for a next request that never comes; the bench stops wrk first.
local IDLE_MS = 3600 * 1000
local STOP_POLL_S = 0.02

-- Per-thread state. Globals, so that done() can read them with thread:get().
bench_id = 0
bench_issued = 0
bench_answered = 0
bench_t_first = 0
bench_t_last = 0
bench_code_counts = {}
bench_finished = 0
bench_created = 0

local paths = {}
local cursor = 1
local share = nil
local rate = 0
local deadline = nil
local stopping = false
local next_stop_poll = 0
local head = nil
local body = nil
local out = nil
local pair_rid = nil

-- Main state: numbers the threads and keeps them for done().
local threads = {}

function setup(thread)
    thread:set("bench_id", #threads)
    table.insert(threads, thread)
end

local function load_paths(file)
    local list = {}
    for line in io.lines(file) do
        if line ~= "" then
            list[#list + 1] = line
        end
    end
    return list
end

local function header_block(extra)
    local lines = {}
    for name, value in pairs(wrk.headers) do
        lines[#lines + 1] = name .. ": " .. value .. "\r\n"
    end
    return table.concat(lines) .. (extra or "")
end

function init(args)
    if BUDGET > 0 then
        share = math.floor(BUDGET / THREADS)
        if bench_id < BUDGET % THREADS then
            share = share + 1
        end
    end
    rate = RATE / THREADS
    if MODE == "create" then
        out = io.open(SYNC_DIR .. "/created-" .. bench_id .. ".tsv", "w")
        head = header_block("Content-Type: application/json\r\n")
    else
        paths = load_paths(PATHS)
        -- Threads start at different places so they do not ping the same checks in step.
        cursor = math.floor(#paths * bench_id / THREADS) + 1
        if MODE == "post" then
            body = string.rep("x", BODY_BYTES)
            head = header_block("Content-Type: text/plain\r\nContent-Length: " .. BODY_BYTES .. "\r\n")
        else
            head = header_block()
        end
    end
end

local function next_path()
    local path = paths[cursor]
    cursor = cursor + 1
    if cursor > #paths then
        cursor = 1
    end
    return path
end

local function new_rid()
    return string.format("%08x-%04x-4%03x-%04x-%04x%08x",
        math.random(0, 0x7fffffff), math.random(0, 0xffff), math.random(0, 0xfff),
        0x8000 + math.random(0, 0x3fff), math.random(0, 0xffff), math.random(0, 0x7fffffff))
end

local created_seq = 0

function request()
    if head == nil then
        -- wrk checks one request before init() in some versions; any valid request will do.
        return wrk.format()
    end
    if MODE == "get" then
        return "GET " .. next_path() .. " HTTP/1.1\r\n" .. head .. "\r\n"
    elseif MODE == "post" then
        return "POST " .. next_path() .. " HTTP/1.1\r\n" .. head .. "\r\n" .. body
    elseif MODE == "pairs" then
        -- start?rid=X then success?rid=X on the same check, a fresh run id for each pair.
        if pair_rid == nil then
            pair_rid = new_rid()
            return "GET " .. paths[cursor] .. "/start?rid=" .. pair_rid .. " HTTP/1.1\r\n" .. head .. "\r\n"
        end
        local rid = pair_rid
        pair_rid = nil
        return "GET " .. next_path() .. "?rid=" .. rid .. " HTTP/1.1\r\n" .. head .. "\r\n"
    elseif MODE == "create" then
        local n = OFFSET + bench_id + THREADS * created_seq
        created_seq = created_seq + 1
        local name = string.format("%s-%07d", PREFIX, n)
        local json = '{"name": "' .. name .. '", "slug": "' .. name .. '", "timeout": 3600, "grace": 3600}'
        return "POST /api/v3/checks/ HTTP/1.1\r\n" .. head .. "Content-Length: " .. #json .. "\r\n\r\n" .. json
    end
    error("unknown BENCH_MODE " .. MODE)
end

local function maybe_finish()
    if bench_finished == 1 or bench_answered < bench_issued then
        return
    end
    bench_finished = 1
    if out ~= nil then
        out:close()
        out = nil
    end
    local marker = io.open(SYNC_DIR .. "/done-" .. bench_id, "w")
    marker:write(bench_issued, " ", bench_answered, "\n")
    marker:close()
end

local function stop_requested(t)
    if t < next_stop_poll then
        return false
    end
    next_stop_poll = t + STOP_POLL_S
    local f = io.open(SYNC_DIR .. "/stop", "r")
    if f ~= nil then
        f:close()
        return true
    end
    return false
end

function delay()
    local t = now()
    if bench_t_first == 0 then
        bench_t_first = t
        if DURATION > 0 then
            deadline = t + DURATION
        end
    end
    if not stopping then
        if (share ~= nil and bench_issued >= share) or (deadline ~= nil and t >= deadline)
            or stop_requested(t) then
            stopping = true
        end
    end
    if stopping then
        maybe_finish()
        return IDLE_MS
    end
    bench_issued = bench_issued + 1
    if rate > 0 then
        -- Constant offered rate: the k-th request of this thread is due at t_first + k / rate.
        local wait_ms = (bench_t_first + (bench_issued - 1) / rate - t) * 1000
        if wait_ms > 0 then
            return wait_ms
        end
    end
    return 0
end

function response(status, headers, response_body)
    bench_answered = bench_answered + 1
    bench_t_last = now()
    bench_code_counts[status] = (bench_code_counts[status] or 0) + 1
    if out ~= nil and status == 201 then
        local uuid = response_body:match('"uuid"%s*:%s*"([%x%-]+)"')
        local slug = response_body:match('"slug"%s*:%s*"([^"]*)"')
        if uuid ~= nil then
            out:write(uuid, "\t", slug or "", "\n")
            bench_created = bench_created + 1
        end
    end
    if stopping then
        maybe_finish()
    end
end

local function encode_codes(counts)
    local parts = {}
    for code, count in pairs(counts) do
        parts[#parts + 1] = string.format("%d:%d", code, count)
    end
    return table.concat(parts, ",")
end

-- wrk "corrects" its latency histogram for coordinated omission before done() by adding synthetic
-- samples, which inflates p99 several times for closed-loop runs. Dump the histogram as it is (one
-- "microseconds count" line per value) and let bench/wrk.py take the synthetic samples out again.
local function dump_histogram(latency)
    local ok, stats = pcall(function()
        return ffi.cast("bench_stats_t **", latency)[0]
    end)
    if not ok then
        return
    end
    local f = io.open(SYNC_DIR .. "/latency.txt", "w")
    f:write("# count ", tonumber(stats.count), "\n")
    for v = tonumber(stats.min), tonumber(stats.max) do
        local c = stats.data[v]
        if c > 0 then
            f:write(v, " ", tonumber(c), "\n")
        end
    end
    f:close()
end

function done(summary, latency, requests)
    dump_histogram(latency)
    for _, thread in ipairs(threads) do
        local finished = thread:get("bench_finished")
        local codes_text = encode_codes(thread:get("bench_code_counts"))
        io.write(string.format("BENCH thread id=%d issued=%d answered=%d created=%d finished=%d " ..
            "t_first=%.6f t_last=%.6f codes=%s\n",
            thread:get("bench_id"), thread:get("bench_issued"), thread:get("bench_answered"),
            thread:get("bench_created"), finished, thread:get("bench_t_first"), thread:get("bench_t_last"),
            codes_text))
    end
    local e = summary.errors
    io.write(string.format("BENCH summary duration_us=%d requests=%d bytes=%d connect=%d read=%d " ..
        "write=%d status=%d timeout=%d\n",
        summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
    io.write(string.format("BENCH latency_us min=%d max=%d mean=%.1f stdev=%.1f p50=%d p90=%d p99=%d " ..
        "p99.9=%d p99.99=%d\n",
        latency.min, latency.max, latency.mean, latency.stdev, latency:percentile(50),
        latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
        latency:percentile(99.99)))
end
