#!/usr/bin/env bash
# `just bench` (and `just bench-quick` = `bench/run.sh --quick`): the whole performance suite of
# issue 6 on a fresh PostgreSQL database, with release builds, in one run on this machine:
#
#   1. data          bench/sql/generate.sql fills one workspace (100,000 entities; quick: 10,000)
#   2. statements    SQL statements one page read sends, counted in PostgreSQL's own statement log
#   3. page_read     our server under wrk at concurrency 1 and 32, then the peers (PostGraphile and
#                    the hand-written SQL limit under pgbench, bench/scripts/peers.sh --rls) alike,
#                    then the SQL limit under RLS and as owner in alternating rounds (what RLS costs)
#   4. webhooks      signed Stripe deliveries, 10% repeats, at concurrency 32 (bench-harness):
#                    on the server with its background workers, then on an API-only process
#   5. ingest        100,000 Stripe customers from a loopback mock through the sync engine, and
#                    the raw COPY of the same rows (bench-harness)
#   6. migrate       `just bench-migrate` (1,000,000 entities; quick: 100,000)
#
# Results: bench/results/latest.json and latest.md (quick: quick.json / quick.md), written only
# when every step succeeded. Any error, wrong count or peer that cannot start stops the run with
# `bench: FAILED at <step>: <why>` and a non-zero exit. Progress goes to stderr.
#
# Environment: TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres) is where
# the throwaway database `bench_<time>_<pid>` is created and dropped. The statement count reads the
# server log under /var/log/postgresql (Debian's layout; PG_LOG overrides).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

step="arguments"
log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: FAILED at %s: %s\n' "$step" "$*" >&2; exit 1; }

quick=0
case "${1:-}" in
    "") ;;
    --quick) quick=1 ;;
    *) die "unknown argument $1 (only --quick)" ;;
esac
if [ "$quick" -eq 1 ]; then
    name=quick entities=10000 duration=3 warmup=1 rls_rounds=2 rls_duration=3 ingest_records=10000 deliveries=2000 migrate_entities=100000
else
    name=latest entities=100000 duration=10 warmup=2 rls_rounds=3 rls_duration=5 ingest_records=100000 deliveries=20000 migrate_entities=1000000
fi
seed=0.42
workspace=6f1c0b4e-0000-4000-8000-000000000001
admin_url="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
t0=$SECONDS

tmp="$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX")"
server_pid=""
db=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
cleanup() {
    stop_server
    if [ -n "$db" ]; then
        psql "$admin_url" -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- tools and builds -------------------------------------------------------------------------
step="tools"
bash "$here/scripts/install-tools.sh" || die "bench/scripts/install-tools.sh failed"
command -v openssl >/dev/null 2>&1 || die "openssl is missing (it signs the bench's JWT)"

step="build"
log "cargo build --release (server, migration, bench-harness, bench-migrate)"
cargo build --release --locked --bins -p server -p migration -p bench-harness -p tests >&2 \
    || die "cargo build --release failed"
bin="$root/target/release"
build_seconds=$(( SECONDS - t0 ))
t0=$SECONDS   # the suite's own time starts after the tools and the build

# --- database and data ------------------------------------------------------------------------
step="database"
db="bench_$(date +%s)_$$"
psql "$admin_url" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null \
    || die "cannot create database $db on $admin_url"
export DATABASE_URL="${admin_url%/*}/$db"
"$bin/migration" up >&2 || die "migrating $db failed"

step="data"
log "generating $entities entities (seed $seed)"
gen_t0=$SECONDS
generated="$(psql "$DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 -v workspace_id="$workspace" \
    -v entities="$entities" -v seed="$seed" -f "$here/sql/generate.sql" | tail -n 1)" \
    || die "bench/sql/generate.sql failed"
gen_seconds=$(( SECONDS - gen_t0 ))
owner="$(jq -r .owner_user_id <<<"$generated")" || die "generate.sql printed no JSON: $generated"
[ "$(jq -r .entities <<<"$generated")" = "$entities" ] || die "generate.sql made the wrong number of entities: $generated"
log "data: $generated ($gen_seconds s)"

# --- our server ---------------------------------------------------------------------------------
jwt_secret="$(openssl rand -hex 32)"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() {
    local header payload signature
    header="$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)"
    payload="$(jq -nc --arg sub "$owner" --argjson exp $(( $(date +%s) + 3600 )) \
        '{sub: $sub, email: "bench-owner@example.com", exp: $exp}' | b64url)"
    signature="$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$jwt_secret" -binary | b64url)"
    printf '%s.%s.%s' "$header" "$payload" "$signature"
}
token="$(jwt)"
export STRIPE_WEBHOOK_SECRET="whsec_bench_$(openssl rand -hex 16)"
port=$(( 20000 + $$ % 20000 ))

# start_server <background workers, "" for the default>: our release server on $DATABASE_URL, ready when /readyz is.
start_server() {
    if ss -ltn 2>/dev/null | awk '{print $4}' | grep -Eq "[:.]$port\$"; then
        die "port $port is already in use"
    fi
    local workers=()
    [ -z "$1" ] || workers=("BACKGROUND_WORKERS=$1")
    # Rate limits off: the suite measures the server, not its limiter.
    env BIND_ADDR="127.0.0.1:$port" AUTH_JWT_SECRET="$jwt_secret" \
        RATE_LIMIT_PER_IP=0 RATE_LIMIT_PER_USER=0 RATE_LIMIT_WEBHOOKS=0 \
        TOKEN_ENCRYPTION_KEYS="bench:$(openssl rand -base64 32)" "${workers[@]}" \
        RUST_LOG=warn "$bin/server" > "$tmp/server.log" 2>&1 &
    server_pid=$!
    local waited=0
    until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do
        kill -0 "$server_pid" 2>/dev/null || { tail -n 30 "$tmp/server.log" >&2; die "the server exited before it was ready"; }
        [ "$waited" -lt 300 ] || { tail -n 30 "$tmp/server.log" >&2; die "the server was not ready after 30 s"; }
        sleep 0.1
        waited=$(( waited + 1 ))
    done
}
url="http://127.0.0.1:$port/graphql"
jq -nc --rawfile q "$here/graphql/entities-page.graphql" --arg ws "$workspace" \
    '{query: $q, variables: {workspaceId: $ws}, operationName: "EntitiesPage"}' > "$tmp/body.json"

# The page our server must return: counts taken from the database, as peers.sh checks its peers.
read -r expected_values expected_provenance < <(psql "$DATABASE_URL" -X -A -t -F ' ' -c "
    WITH page AS (SELECT id FROM entities WHERE workspace_id = '$workspace' ORDER BY id LIMIT 50)
    SELECT (SELECT count(*) FROM entity_attribute_values v JOIN page p ON p.id = v.entity_id),
           (SELECT count(*) FROM entity_attribute_provenance pr JOIN page p ON p.id = pr.entity_id)")
check_page() {
    local response got
    response="$(curl -sS -f -X POST -H 'content-type: application/json' -H "authorization: Bearer $token" \
        --data @"$tmp/body.json" "$url")" || die "the server answered the page query with an HTTP error"
    got="$(jq -r 'if .errors then "errors: \(.errors | tostring)" else
            [(.data.entities.edges | length), ([.data.entities.edges[].node.attributes | length] | add // 0),
             ([.data.entities.edges[].node.attributes[] | select(.provenance != null)] | length),
             .data.entities.pageInfo.hasNextPage] | @tsv end' <<<"$response")" || die "the server did not return JSON"
    [ "$got" = "50	$expected_values	$expected_provenance	true" ] \
        || die "the server returned (entities, values, provenance, hasNextPage) = ($got), expected (50, $expected_values, $expected_provenance, true)"
    printf '%s' "${#response}"
}

# --- statements per page read ---------------------------------------------------------------------
step="statements"
pg_log="${PG_LOG:-$(ls -t /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -n 1)}"
[ -n "$pg_log" ] && [ -r "$pg_log" ] || die "cannot read PostgreSQL's log (set PG_LOG)"
marker() { psql "$DATABASE_URL" -X -q -A -t -c "SELECT 'bench-marker-$1'" >/dev/null; }
wait_for_marker() {
    local waited=0
    until grep -q "bench-marker-$1" "$pg_log"; do
        [ "$waited" -lt 100 ] || die "marker $1 never reached $pg_log"
        sleep 0.1
        waited=$(( waited + 1 ))
    done
}
psql "$DATABASE_URL" -X -q -c "ALTER DATABASE $db SET log_statement = 'all'" || die "cannot set log_statement"
start_server 0   # no background loops: every statement logged in the window is a request's
check_page >/dev/null
counted=5
marker "start-$$"
for _ in $(seq "$counted"); do check_page >/dev/null; done
marker "end-$$"
wait_for_marker "end-$$"
statements="$(awk -v db="$db" -v start="bench-marker-start-$$" -v end="bench-marker-end-$$" '
    index($0, start) { on = 1; next }
    index($0, end) { on = 0 }
    on && index($0, "@" db " LOG:  ") && (index($0, "LOG:  statement: ") || index($0, "LOG:  execute ")) { n++ }
    END { print n + 0 }' "$pg_log")"
stop_server
psql "$DATABASE_URL" -X -q -c "ALTER DATABASE $db RESET log_statement" || die "cannot reset log_statement"
[ "$(( statements % counted ))" -eq 0 ] || die "$statements statements for $counted requests: not a constant number per request"
per_request=$(( statements / counted ))
[ "$per_request" -gt 0 ] || die "no statement logged for the page reads (is log_statement honoured?)"
log "statements: $per_request per page read ($statements for $counted requests)"

# --- page read: ours ----------------------------------------------------------------------------
results="$tmp/results.jsonl"
: > "$results"
start_server ""
response_bytes="$(check_page)"
wrk_run() {  # wrk_run <concurrency> <seconds> <out>
    local threads=$(( $1 < 2 ? $1 : 2 )) rc=0
    BENCH_BODY_FILE="${body_file:-$tmp/body.json}" BENCH_AUTHORIZATION="Bearer $token" \
        wrk -t "$threads" -c "$1" -d "${2}s" --timeout 30s -s "$here/scripts/wrk-graphql.lua" "$url" \
        > "$3" 2> "$3.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$3" "$3.err" >&2; die "wrk exited with $rc"; }
    local line
    line="$(sed -n 's/^WRK_RESULT //p' "$3")"
    [ -n "$line" ] || { cat "$3" "$3.err" >&2; die "wrk printed no result"; }
    [ "$(jq '.bad_responses + .errors_connect + .errors_read + .errors_write + .errors_status + .errors_timeout' <<<"$line")" = 0 ] \
        && [ "$(jq .requests <<<"$line")" -gt 0 ] || { cat "$3.err" >&2; die "wrk: $line"; }
    printf '%s' "$line"
}
for c in 1 32; do
    step="page_read: ours c=$c"
    log "ours: wrk -c $c -d ${duration}s (after ${warmup}s warm-up)"
    wrk_run "$c" "$warmup" "$tmp/wrk_warmup_$c.out" >/dev/null
    line="$(wrk_run "$c" "$duration" "$tmp/wrk_$c.out")"
    kill -0 "$server_pid" 2>/dev/null || die "the server died during the run"
    jq -c --argjson c "$c" --argjson d "$duration" --argjson w "$warmup" --argjson spr "$per_request" \
        --argjson bytes "$response_bytes" --arg version "$(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)" \
        '{workload: "page_read", peer: "ours", tool: "wrk", tool_version: $version, mode: "rls",
          concurrency: $c, duration_s: $d, warmup_s: $w, requests: .requests, errors: 0,
          rps: .rps, mean_ms: .mean_ms, p50_ms: .p50_ms, p90_ms: .p90_ms, p99_ms: .p99_ms, max_ms: .max_ms,
          statements_per_request: $spr,
          statements_note: "counted: PostgreSQL log_statement=all lines for 5 page reads, divided by 5",
          response_bytes: $bytes,
          unit: "requests/s over the wrk run; latency per request in ms (wrk)"}' <<<"$line" >> "$results"
    log "ours c=$c: $(jq -r '"\(.rps) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms"' <<<"$line")"
done
page_rss_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")"

# --- hostile mix ------------------------------------------------------------------------------------
# A simple signed-in query at concurrency 8, quiet, then while two other clients send documents
# the server must refuse (a fragment fan-out of 31 levels and 120 aliases of a 100-entity page):
# the refused work must not slow the others (target p99 < 50 ms).
step="hostile_mix"
body_file="$tmp/simple.json"
printf '%s' '{"query":"{ viewer { id } workspaces { id } }"}' > "$body_file"
python3 - "$tmp/fan_out.json" "$tmp/aliases.json" "$workspace" <<'PY'
import json, sys
fan = "query{...F0}" + "".join(f" fragment F{i} on Query{{...F{i+1} ...F{i+1}}}" for i in range(30)) + " fragment F30 on Query{__typename}"
aliases = "{ " + " ".join(f'a{i}: entities(workspaceId: "{sys.argv[3]}", first: 100) {{ edges {{ node {{ id }} }} }}' for i in range(120)) + " }"
for path, query in ((sys.argv[1], fan), (sys.argv[2], aliases)):
    open(path, "w").write(json.dumps({"query": query}))
PY
log "hostile mix: quiet p99 of a simple query at c=8"
quiet="$(wrk_run 8 "$duration" "$tmp/wrk_quiet.out")"
hostile_pids=()
for bomb in fan_out aliases; do
    BENCH_BODY_FILE="$tmp/$bomb.json" wrk -t 1 -c 1 -d "$(( duration + 2 ))s" --timeout 30s \
        -s "$here/scripts/wrk-hostile.lua" "$url" > "$tmp/wrk_$bomb.out" 2>&1 &
    hostile_pids+=("$!")
done
sleep 1
attacked="$(wrk_run 8 "$duration" "$tmp/wrk_attacked.out")"
for pid in "${hostile_pids[@]}"; do wait "$pid" || die "a hostile wrk client failed"; done
unset body_file
fan_line="$(sed -n 's/^WRK_RESULT //p' "$tmp/wrk_fan_out.out")"
alias_line="$(sed -n 's/^WRK_RESULT //p' "$tmp/wrk_aliases.out")"
[ -n "$fan_line" ] && [ -n "$alias_line" ] || die "a hostile wrk client printed no result"
[ "$(jq '.bad_responses' <<<"$fan_line")" = 0 ] && [ "$(jq '.bad_responses' <<<"$alias_line")" = 0 ] \
    || die "a hostile document was answered with data or a 5xx: $fan_line $alias_line"
jq -c -n --argjson quiet "$quiet" --argjson attacked "$attacked" --argjson fan "$fan_line" \
    --argjson aliases "$alias_line" --argjson d "$duration" \
    '{workload: "hostile_mix", concurrency: 8, duration_s: $d,
      quiet_p99_ms: $quiet.p99_ms, attacked_p99_ms: $attacked.p99_ms, target_p99_ms: 50,
      quiet_rps: $quiet.rps, attacked_rps: $attacked.rps,
      fan_out_refused_per_s: $fan.rps, alias_bomb_refused_per_s: $aliases.rps,
      unit: "p99 latency in ms of { viewer { id } workspaces { id } } at c=8 (wrk), quiet and while two clients send refused documents (31-level fragment fan-out; 120 aliases of entities(first: 100))"}' >> "$results"
log "hostile mix: p99 quiet $(jq -r .p99_ms <<<"$quiet") ms, attacked $(jq -r .p99_ms <<<"$attacked") ms; refused $(jq -r .rps <<<"$fan_line") fan-outs/s and $(jq -r .rps <<<"$alias_line") alias bombs/s"

# --- webhook intake ------------------------------------------------------------------------------
# Twice: on the same server (its 4 background workers process the follow-up jobs meanwhile, on the
# same 2 cores), then on an API-only process (BACKGROUND_WORKERS=0: intake alone, the jobs are
# left for workers elsewhere). Each run sends fresh events and checks its own counts.
# CPU clock ticks (user + system) of one process, and of every PostgreSQL server process.
ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
postgres_ticks() {
    local total=0 pid
    for pid in $(pgrep -x postgres); do total=$(( total + $(ticks_of "$pid") )); done
    echo "$total"
}
webhooks() {  # webhooks <workload name> <server note>
    step="webhooks: $1"
    log "$1: $deliveries signed deliveries, 10% repeats, concurrency 32"
    local server0 pg0 server1 pg1 hz
    hz="$(getconf CLK_TCK)"
    server0="$(ticks_of "$server_pid")" pg0="$(postgres_ticks)"
    "$bin/bench-harness" webhooks --url "http://127.0.0.1:$port" --deliveries "$deliveries" \
        --duplicate-percent 10 --concurrency 32 > "$tmp/webhooks.json" || die "bench-harness webhooks failed"
    server1="$(ticks_of "$server_pid")" pg1="$(postgres_ticks)"
    kill -0 "$server_pid" 2>/dev/null || die "the server died during the webhook burst"
    # CPU per delivery from /proc (clock ticks, so ±1 tick of rounding over the burst).
    jq -c --arg w "$1" --arg note "$2" --argjson n "$deliveries" --argjson hz "$hz" \
        --argjson server $(( server1 - server0 )) --argjson pg $(( pg1 - pg0 )) \
        '. + {workload: $w, server: $note,
              cpu_us_per_delivery: {server: ($server / $hz * 1e6 / $n | round),
                                    postgres: ($pg / $hz * 1e6 / $n | round),
                                    note: "user + system CPU of the server process and of all PostgreSQL processes during the burst (/proc), over the deliveries sent"}}' \
        "$tmp/webhooks.json" >> "$results"
    log "$1: $(tail -n 1 "$results" | jq -r '"\(.rps) deliveries/s, p99 \(.p99_ms) ms, CPU µs/delivery: server \(.cpu_us_per_delivery.server), PostgreSQL \(.cpu_us_per_delivery.postgres)"')"
}
webhooks webhook_intake_with_workers "one server process with its default 4 background workers, which process the follow-up jobs during the burst"
server_rss_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")"
stop_server
start_server 0
webhooks webhook_intake "an API-only server process (BACKGROUND_WORKERS=0): the follow-up jobs stay queued for workers elsewhere"
api_rss_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")"
[ "$api_rss_kb" -le "$server_rss_kb" ] || server_rss_kb="$api_rss_kb"
stop_server

# --- page read: the peers -------------------------------------------------------------------------
for c in 1 32; do
    step="page_read: peers c=$c"
    bash "$here/scripts/peers.sh" --workspace "$workspace" --concurrency "$c" --duration "$duration" \
        --warmup "$warmup" --rls --port $(( port + 1 )) >> "$results" || die "bench/scripts/peers.sh -c $c failed"
    # What the policies cost: the page SQL under RLS and as the owner (the same transaction
    # without SET LOCAL ROLE: row-level security bypassed), alternating for $rls_rounds rounds so
    # that the machine's drift falls on both sides alike.
    for round in $(seq 1 "$rls_rounds"); do
        for side in --rls --owner-in-transaction; do
            step="page_read: the page SQL $side c=$c, round $round"
            bash "$here/scripts/peers.sh" --workspace "$workspace" --concurrency "$c" \
                --duration "$rls_duration" --warmup "$warmup" --only sql_limit "$side" \
                | jq -c --argjson round "$round" '. + {workload: "page_sql_rls_cost", round: $round}' \
                >> "$results" || die "bench/scripts/peers.sh --only sql_limit $side -c $c failed"
        done
    done
done

# --- sync ingest ------------------------------------------------------------------------------------
step="ingest"
log "ingest: $ingest_records Stripe customers through the sync engine, then COPY"
"$bin/bench-harness" ingest --records "$ingest_records" >> "$results" || die "bench-harness ingest failed"
log "ingest: $(tail -n 1 "$results" | jq -r '"\(.records_per_s) records/s, COPY \(.copy_records_per_s) records/s"')"

# --- migration ------------------------------------------------------------------------------------
step="migrate"
log "bench-migrate on $migrate_entities entities"
BENCH_ENTITIES="$migrate_entities" BENCH_MIGRATE_OUT="$tmp/migrate.json" "$bin/bench-migrate" >&2 \
    || die "bench-migrate failed"
jq -c '. + {workload: "migrate"}' "$tmp/migrate.json" >> "$results" || die "bench-migrate wrote no result"

# --- report ---------------------------------------------------------------------------------------
step="report"
total_seconds=$(( SECONDS - t0 ))
jq -s --arg started "$started_at" --argjson quick "$quick" --argjson entities "$entities" \
    --argjson gen "$gen_seconds" --argjson total "$total_seconds" --argjson build "$build_seconds" \
    --argjson page_rss "$page_rss_kb" --argjson rss "$server_rss_kb" \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" --arg cores "$(nproc)" \
    --arg pg "$(psql "$admin_url" -X -A -t -c 'SHOW server_version')" --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    -f "$here/report.jq" "$results" > "$tmp/$name.json" || die "building the report failed"
jq -r -f "$here/report-md.jq" "$tmp/$name.json" > "$tmp/$name.md" || die "building the markdown table failed"
mkdir -p "$here/results"
cp "$tmp/$name.json" "$here/results/$name.json.tmp" && mv "$here/results/$name.json.tmp" "$here/results/$name.json"
cp "$tmp/$name.md" "$here/results/$name.md.tmp" && mv "$here/results/$name.md.tmp" "$here/results/$name.md"
cat "$here/results/$name.md"
log "done in ${total_seconds}s after ${build_seconds}s of tools and build: bench/results/$name.json, bench/results/$name.md"
