-- Alertmanager webhook (version 4) carrying a full batch of new firing alerts, the most
-- Alertmanager sends in one notification.
-- args: integration_key run_tag (hex, it prefixes the fingerprints) batch_size [quota]
local counter = 0

function init(args)
  path = "/integrations/alertmanager/" .. args[1]
  run_tag = args[2]
  batch_size = tonumber(args[3])
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  counter = counter + 1
  local alerts = {}
  for i = 1, batch_size do
    local instance = string.format("%s-%d-%d-%d", run_tag, id, counter, i)
    alerts[i] = string.format(
      '{"status":"firing","labels":{"alertname":"CPUHigh","instance":"%s","severity":"critical"},' ..
      '"annotations":{"summary":"CPU high on %s"},"startsAt":"2024-05-01T12:00:00Z",' ..
      '"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://127.0.0.1/graph",' ..
      '"fingerprint":"%s%02x%06x%04x"}',
      instance, instance, run_tag, id, counter, i)
  end
  local body = string.format(
    '{"version":"4","groupKey":"{}:{alertname=\\"CPUHigh\\"}","truncatedAlerts":0,' ..
    '"status":"firing","receiver":"tocsin","groupLabels":{"alertname":"CPUHigh"},' ..
    '"commonLabels":{"alertname":"CPUHigh","severity":"critical"},' ..
    '"commonAnnotations":{},"externalURL":"http://127.0.0.1:9093","alerts":[%s]}',
    table.concat(alerts, ","))
  return wrk.format("POST", path, headers, body)
end
