-- wrk script body for bench/pixel. run.sh writes the real scripts as
--   paths = { "/o/<token>.gif", ... }   (or "/bench/bare/<token>.gif", ...)
-- followed by this file, and passes the rest through the environment:
--   ETB_LABEL     name printed with the result
--   ETB_ACTIVE_S  seconds each thread sends tracked requests (wrk's -d must be a bit longer)
--   ETB_RATE      when set: total requests per second to pace at (uses wrk's delay())
--   ETB_THREADS   wrk's -t, to split ETB_RATE between the threads
--
-- Every connection rotates over `paths`. After ETB_ACTIVE_S a connection sends only GET /healthz, which records
-- nothing; once every tracked request of a thread has its answer the thread stops. So no tracked request is in
-- flight when wrk ends, and the 2xx counted here can be compared exactly with the rows the server recorded.
-- done() prints one line "ETB {json}" that run.sh reads.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } etb_timespec;
int clock_gettime(int clk_id, etb_timespec *tp);
]]
local ts = ffi.new("etb_timespec[1]")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC, shared by all threads
  return tonumber(ts[0].tv_sec) * 1e6 + tonumber(ts[0].tv_nsec) / 1e3
end

local label     = os.getenv("ETB_LABEL") or "run"
local active_us = (tonumber(os.getenv("ETB_ACTIVE_S")) or 10) * 1e6
local rate      = tonumber(os.getenv("ETB_RATE") or "")
local nthreads  = tonumber(os.getenv("ETB_THREADS")) or 1

-- setup() runs in wrk's main Lua state, once per thread, before that thread's init().
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- Per-thread state: each wrk thread has its own Lua state, so these globals are per thread; done() reads them
-- with thread:get(). Numbers only, so they cross between states.
sent, ok, other, tail, drained, first_us, last_us = 0, 0, 0, 0, 0, 0, 0
local idx, deadline, phantom, tail_req = 0, nil, false, nil

function init(args)
  idx = ((tid or 1) - 1) * 37
  -- wrk calls request() once on the first thread right after its init(), to inspect the request, and never sends
  -- that one: it must not count as sent.
  phantom = (tid == 1)
end

function request()
  if phantom then
    phantom = false
    return wrk.format("GET", "/healthz")
  end
  local now = now_us()
  if deadline == nil then
    deadline = now + active_us
    first_us = now
  end
  if now >= deadline then
    tail_req = tail_req or wrk.format("GET", "/healthz")
    return tail_req
  end
  idx = idx % #paths + 1
  sent = sent + 1
  return wrk.format("GET", paths[idx])
end

function response(status, headers, body)
  local ct = headers["Content-Type"] or headers["content-type"] or ""
  if ct:sub(1, 10) == "text/plain" and status == 200 then
    tail = tail + 1                         -- /healthz after the deadline
  elseif status >= 200 and status < 300 and ct:sub(1, 9) == "image/gif" then
    ok = ok + 1
    last_us = now_us()
  else
    other = other + 1
  end
  if deadline ~= nil and ok + other >= sent and now_us() >= deadline then
    drained = 1
    wrk.thread:stop()
  end
end

if rate then
  -- One schedule per thread: slot k of a thread is at start + k * interval, whichever of its connections is free
  -- takes the next slot. So the rate holds whatever the latency is, as long as a connection is free. A thread
  -- that fell more than 10 ms behind drops the backlog instead of bursting (the achieved rate then shows it).
  local interval_us = 1e6 * nthreads / rate
  local next_slot = nil
  function delay()
    local now = now_us()
    if next_slot == nil or next_slot < now - 10000 then next_slot = now end
    local d = next_slot - now
    next_slot = next_slot + interval_us
    if d <= 0 then return 0 end
    return math.floor(d / 1000) -- wrk takes whole milliseconds
  end
end

function done(summary, latency, requests)
  local t_ok, t_other, t_sent, t_tail, t_drained, t0, t1 = 0, 0, 0, 0, 0, math.huge, 0
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok")
    t_other = t_other + t:get("other")
    t_sent = t_sent + t:get("sent")
    t_tail = t_tail + t:get("tail")
    t_drained = t_drained + t:get("drained")
    local f, l = t:get("first_us"), t:get("last_us")
    if f > 0 and f < t0 then t0 = f end
    if l > t1 then t1 = l end
  end
  local window = (t1 > t0) and (t1 - t0) / 1e6 or 0
  local e = summary.errors
  io.write(string.format(
    'ETB {"label":"%s","ok":%d,"other":%d,"sent":%d,"tail":%d,"threads":%d,"drained":%d,"window_s":%.4f,' ..
    '"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"requests":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    label, t_ok, t_other, t_sent, t_tail, #threads, t_drained, window, window > 0 and t_ok / window or 0,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
end
