-- A storm: exactly `quota` triggers per wrk thread, all on one dedup key. Each request is
-- reserved in delay() (called once before every request), so no connection sends beyond the
-- quota; spare connections idle. When its last answer arrives the thread says so on stdout,
-- and loadgen.py interrupts wrk, which then prints its summary.
-- args: routing_key dedup_key quota_per_thread
local reserved, answered = 0, 0
accepted = 0

function init(args)
  routing_key = args[1]
  dedup_key = args[2]
  quota = tonumber(args[3])
  headers = { ["Content-Type"] = "application/json" }
  body = string.format(
    '{"routing_key":"%s","event_action":"trigger","dedup_key":"%s",' ..
    '"payload":{"summary":"Checkout error rate above 5%%","source":"lb-1","severity":"critical"}}',
    routing_key, dedup_key)
end

function delay()
  if reserved < quota then
    reserved = reserved + 1
    return 0
  end
  return 3600000
end

function request()
  return wrk.format("POST", "/v2/enqueue", headers, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status == 202 then
    accepted = accepted + 1
  end
  if answered >= quota then
    io.write(string.format("STORM_THREAD_DONE %d\n", id))
    io.flush()
    wrk.thread:stop()
  end
end
