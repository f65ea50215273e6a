-- PagerDuty Events API v2 triggers at a steady rate, for background load.
-- args: routing_key run_tag rate_per_thread keys
--   keys 0: every dedup key new (each event opens an incident); keys N: cycle over N keys.
-- Each wrk thread keeps its own timetable: delay() (called before every request) waits until
-- the next slot, so the rate holds however fast the server answers; a thread that fell behind
-- (every connection waiting on a slow answer) catches up as soon as connections free up.
local ffi = require("ffi")
ffi.cdef [[
  struct tocsin_timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clock_id, struct tocsin_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("struct tocsin_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local counter = 0
local next_at = nil

function init(args)
  routing_key = args[1]
  run_tag = args[2]
  interval_ms = 1000 / tonumber(args[3])
  keys = tonumber(args[4])
  headers = { ["Content-Type"] = "application/json" }
end

function delay()
  local now = now_ms()
  if next_at == nil then
    next_at = now
  end
  local wait = next_at - now
  next_at = next_at + interval_ms
  if wait < 0 then
    return 0
  end
  return wait
end

function request()
  counter = counter + 1
  local n = counter
  if keys > 0 then
    n = counter % keys
  end
  local key = string.format("%s-%d-%d", run_tag, id, n)
  local body = string.format(
    '{"routing_key":"%s","event_action":"trigger","dedup_key":"%s",' ..
    '"payload":{"summary":"Background load %s","source":"bg-%d","severity":"warning"}}',
    routing_key, key, key, id)
  return wrk.format("POST", "/v2/enqueue", headers, body)
end
