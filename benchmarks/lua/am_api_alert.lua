-- Prometheus Alertmanager API v2: one new alert per request (unique labels), as a
-- Prometheus server would post it to /api/v2/alerts.
-- args: run_tag
local counter = 0

function init(args)
  run_tag = args[1]
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  counter = counter + 1
  local key = string.format("%s-%d-%d", run_tag, id, counter)
  local body = string.format(
    '[{"labels":{"alertname":"CPUHigh","instance":"%s","severity":"critical"},' ..
    '"annotations":{"summary":"CPU high on %s"},"generatorURL":"http://127.0.0.1/graph"}]',
    key, key)
  return wrk.format("POST", "/api/v2/alerts", headers, body)
end
