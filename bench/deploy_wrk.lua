-- wrk script for bench/deploy.py: POST one JSON body per request, cycling through a file.
--
--   wrk -t1 -c16 -d15s -s deploy_wrk.lua URL -- BODIES_FILE [AUTHORIZATION]
--
-- BODIES_FILE holds one JSON document per line. The requests are formatted once per
-- thread in init() so that building them costs nothing while the clock runs. done()
-- prints one line "WRK_JSON {...}" with the counts and latency percentiles (microseconds),
-- including p95, which wrk's own --latency table leaves out.

local prepared = {}
local count = 0
local next_index = 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  if args[2] ~= nil and args[2] ~= "" then
    headers["Authorization"] = args[2]
  end
  for line in io.lines(args[1]) do
    if line ~= "" then
      count = count + 1
      prepared[count] = wrk.format("POST", nil, headers, line)
    end
  end
  if count == 0 then
    error("no request bodies in " .. args[1])
  end
end

function request()
  next_index = next_index % count + 1
  return prepared[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean
  ))
end
