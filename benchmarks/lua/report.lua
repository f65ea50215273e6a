-- Shared by every scenario: numbers each wrk thread, sums the per-thread counters and prints
-- one machine-readable line that benchmarks/loadgen.py parses.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local accepted, counted = 0, false
  for _, t in ipairs(threads) do
    local n = t:get("accepted")
    if n ~= nil then
      accepted = accepted + n
      counted = true
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"accepted":%s,"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    counted and tostring(accepted) or "null",
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
  io.flush()
end
