-- wrk script shared by the benchmarks: GET PB_WRK_PATH (default: the URL's path) with an
-- optional Authorization header (PB_WRK_AUTH), and print one WRKJSON line at the end.
local path = os.getenv("PB_WRK_PATH")
local auth = os.getenv("PB_WRK_AUTH")

function request()
  local headers = {}
  if auth and auth ~= "" then headers["Authorization"] = auth end
  return wrk.format("GET", path, headers, nil)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p95_us": %d, "p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "status": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(95), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
