-- A storm: the same trigger, on one dedup key, over and over (run with quota.lua).
-- args: routing_key dedup_key quota_per_thread
function init(args)
  headers = { ["Content-Type"] = "application/json" }
  body = string.format(
    '{"routing_key":"%s","event_action":"trigger","dedup_key":"%s",' ..
    '"payload":{"summary":"Checkout error rate above 5%%","source":"lb-1","severity":"critical"}}',
    args[1], args[2])
end

function request()
  return wrk.format("POST", "/v2/enqueue", headers, body)
end
