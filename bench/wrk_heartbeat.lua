-- wrk script for bench/heartbeat.py: POST /api/pod/heartbeat, rotating pods.
-- PB_HB_DATA: file with one line per pod: "<api key>\t<body A>\t<body B>".
-- PB_HB_MODE: "unchanged" (always body A: the fast path) or "changed" (each pod alternates
-- A and B, so every heartbeat changes its cameras). Pods are split between wrk threads, so
-- two threads never send for the same pod.
-- PB_WRK_THREADS: wrk's -t (each thread runs its own copy of this script).
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  nthreads = tonumber(os.getenv("PB_WRK_THREADS") or "1")
  local path = os.getenv("PB_HB_DATA")
  mode = os.getenv("PB_HB_MODE") or "unchanged"
  pods = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == tid then
      local key, a, b = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
      table.insert(pods, {auth = "Bearer " .. key, a = a, b = b, flip = false})
    end
    i = i + 1
  end
  idx = 0
  headers = {["Content-Type"] = "application/json"}
end

function request()
  idx = idx % #pods + 1
  local p = pods[idx]
  local body = p.a
  if mode == "changed" then
    p.flip = not p.flip
    if p.flip then body = p.b end
  end
  headers["Authorization"] = p.auth
  return wrk.format("POST", "/api/pod/heartbeat", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
