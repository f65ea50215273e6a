-- PagerDuty Events API v2: one trigger per request, every dedup key new.
-- args: routing_key run_tag
local counter = 0

function init(args)
  routing_key = args[1]
  run_tag = args[2]
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  counter = counter + 1
  local key = string.format("%s-%d-%d", run_tag, id, counter)
  local body = string.format(
    '{"routing_key":"%s","event_action":"trigger","dedup_key":"%s",' ..
    '"payload":{"summary":"CPU high on %s","source":"%s","severity":"critical"}}',
    routing_key, key, key, key)
  return wrk.format("POST", "/v2/enqueue", headers, body)
end
