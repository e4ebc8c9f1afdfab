-- wrk script of the hostile mix: POSTs the body in $BENCH_BODY_FILE (a document the server must
-- refuse) as fast as the connection allows. A refusal is the expected answer (a JSON 200 with
-- `errors`, or 4xx); a 5xx or an answer with `data` counts as bad. Prints one JSON line
-- (prefixed `WRK_RESULT `) with requests, bad answers and requests/s.
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

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    bad = 0
end

function response(status, headers, body)
    if status >= 500 or body:find('"data":{', 1, true) then
        bad = bad + 1
    end
end

function done(summary, latency, requests)
    local bad_total = 0
    for _, thread in ipairs(threads) do
        bad_total = bad_total + (thread:get("bad") or 0)
    end
    local seconds = summary.duration / 1e6
    io.write(string.format('WRK_RESULT {"requests":%d,"bad_responses":%d,"rps":%.2f,"p99_ms":%.3f}\n',
        summary.requests, bad_total, summary.requests / seconds, latency:percentile(99) / 1000))
end
