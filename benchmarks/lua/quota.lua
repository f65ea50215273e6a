-- Appended to a scenario to send exactly `quota` requests per wrk thread (the last script
-- argument) instead of running for a time. Each request is reserved in delay(), which wrk calls
-- once before every request, so no connection sends beyond the quota; spare connections idle.
-- When its last answer arrives the thread says so on stdout, and loadgen.py interrupts wrk,
-- which then prints its summary. Every request is answered, so the latencies miss none.
local scenario_init = init
local reserved, answered = 0, 0
accepted = 0

function init(args)
  quota = tonumber(args[#args])
  if scenario_init ~= nil then
    scenario_init(args)
  end
end

function delay()
  if reserved < quota then
    reserved = reserved + 1
    return 0
  end
  return 3600000
end

function response(status, headers, body)
  answered = answered + 1
  if status >= 200 and status < 300 then
    accepted = accepted + 1
  end
  if answered >= quota then
    io.write(string.format("QUOTA_THREAD_DONE %d\n", id))
    io.flush()
    wrk.thread:stop()
  end
end
