-- wrk script of the peer page read: POSTs the GraphQL body in $BENCH_BODY_FILE to the URL, counts
-- every response that is not `200` with `{"data":…}` and no `"errors":[` as bad, and prints one
-- JSON line (prefixed `WRK_RESULT `) with requests, errors, requests/s and latency percentiles.
local path = os.getenv("BENCH_BODY_FILE")
if not path then
    error("BENCH_BODY_FILE is not set")
end
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local auth = os.getenv("BENCH_AUTHORIZATION")
if auth and auth ~= "" then
    wrk.headers["Authorization"] = auth
end

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    bad = 0
    ok = 0
end

function response(status, headers, body)
    if status == 200 and body:sub(1, 8) == '{"data":' and not body:find('"errors":[', 1, true) then
        ok = ok + 1
    else
        bad = bad + 1
        if bad == 1 then
            io.stderr:write("wrk: first bad response: status " .. status .. ": " .. body:sub(1, 300) .. "\n")
        end
    end
end

function done(summary, latency, requests)
    local bad_total, ok_total = 0, 0
    for _, thread in ipairs(threads) do
        bad_total = bad_total + (thread:get("bad") or 0)
        ok_total = ok_total + (thread:get("ok") or 0)
    end
    local e = summary.errors
    local seconds = summary.duration / 1e6
    io.write(string.format(
        'WRK_RESULT {"requests":%d,"ok_responses":%d,"bad_responses":%d,"errors_connect":%d,"errors_read":%d,' ..
        '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"duration_s":%.3f,"rps":%.2f,' ..
        '"mean_ms":%.3f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"bytes":%d}\n',
        summary.requests, ok_total, bad_total, e.connect, e.read, e.write, e.status, e.timeout, seconds,
        summary.requests / seconds, latency.mean / 1000, latency:percentile(50) / 1000,
        latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, summary.bytes))
end
