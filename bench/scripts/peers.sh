#!/usr/bin/env bash
# The two peers of the GraphQL page read of `just bench` (issue 6), on a database filled by
# bench/sql/generate.sql:
#   sql_limit     bench/sql/page.sql (the page as one JSON document) under pgbench -M prepared
#   postgraphile  PostGraphile 4.14.1 (bench/postgraphile) serving the same database, the
#                 equivalent query (bench/postgraphile/query.graphql) under wrk
# Both at the same concurrency for the same duration. Before measuring, each peer's answer is
# checked once (page size, attribute and provenance counts against the database); during the run
# every error or bad response counts, and any is fatal.
#
# Usage:
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench bench/scripts/peers.sh \
#       --workspace <uuid> [--concurrency 8] [--duration 10] [--warmup 2] [--rls [<user uuid>]] \
#       [--port 5055] [--only sql_limit|postgraphile] [--owner-in-transaction] [--out results.jsonl]
#
# --warmup S first runs the same load for S seconds unmeasured (V8's JIT, PostgreSQL's caches and
# plan cache), for both peers alike; 0 skips it.
#
# --owner-in-transaction (sql_limit only) runs the page SQL as the DATABASE_URL user inside the
# same BEGIN; set_config(claim); …; COMMIT as --rls, without SET LOCAL ROLE: the control that
# isolates what the policies cost (mode "owner_tx").
#
# --rls runs both peers as our API does: role `authenticated` with request.jwt.claim.sub set to
# the user (default: the workspace's OWNER), in a transaction; without it both run as the
# DATABASE_URL user (the owner in the suite: row-level security bypassed).
#
# Output: one JSON object per peer on stdout (and in --out), only after every step succeeded:
#   {"workload":"page_read","peer":"sql_limit","tool":"pgbench","mode":"owner","concurrency":8,
#    "duration_s":10,"requests":…,"errors":0,"rps":…,"mean_ms":…,"p50_ms":…,"p99_ms":…, …}
# Progress goes to stderr. Exit status non-zero with `peers: FAILED at <step>: <why>` on any error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$(dirname "$here")"

step="arguments"
log() { printf 'peers: %s\n' "$*" >&2; }
die() { printf 'peers: FAILED at %s: %s\n' "$step" "$*" >&2; exit 1; }

workspace=""
concurrency=8
duration=10
warmup=2
rls=0
rls_user=""
port=5055
only=""
owner_tx=0
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --workspace) workspace="${2:-}"; shift 2 ;;
        --concurrency|-c) concurrency="${2:-}"; shift 2 ;;
        --duration|-T) duration="${2:-}"; shift 2 ;;
        --warmup) warmup="${2:-}"; shift 2 ;;
        --rls)
            rls=1
            if [ $# -ge 2 ] && [[ "$2" =~ ^[0-9a-fA-F-]{36}$ ]]; then rls_user="$2"; shift 2; else shift; fi ;;
        --port) port="${2:-}"; shift 2 ;;
        --only) only="${2:-}"; shift 2 ;;
        --owner-in-transaction) owner_tx=1; shift ;;
        --out) out="${2:-}"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -n "${DATABASE_URL:-}" ] || die "DATABASE_URL is not set"
[[ "$workspace" =~ ^[0-9a-fA-F-]{36}$ ]] || die "--workspace <uuid> is required"
[[ "$concurrency" =~ ^[1-9][0-9]*$ ]] || die "--concurrency must be a positive integer"
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive number of seconds"
[[ "$warmup" =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds"
[[ "$port" =~ ^[1-9][0-9]*$ ]] || die "--port must be a port number"
case "$only" in ""|sql_limit|postgraphile) ;; *) die "--only takes sql_limit or postgraphile" ;; esac
if [ "$owner_tx" -eq 1 ]; then
    [ "$rls" -eq 0 ] || die "--owner-in-transaction and --rls exclude each other"
    [ "$only" = sql_limit ] || die "--owner-in-transaction needs --only sql_limit"
fi

step="tools"
for tool in psql pgbench wrk jq curl node; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run bench/scripts/install-tools.sh"
done
[ -f "$bench/postgraphile/node_modules/postgraphile/package.json" ] \
    || die "PostGraphile is not installed: run bench/scripts/install-tools.sh"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/bench-peers.XXXXXX")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

threads=$(( concurrency < 2 ? concurrency : 2 ))
mode=owner
[ "$rls" -eq 1 ] && mode=rls
[ "$owner_tx" -eq 1 ] && mode=owner_tx

psql_q() { psql "$DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

step="database"
count="$(psql_q -c "SELECT count(*) FROM entities WHERE workspace_id = '$workspace'")" \
    || die "cannot read entities of the workspace from DATABASE_URL"
[ "$count" -gt 0 ] || die "workspace $workspace has no entities (run bench/sql/generate.sql)"
page_size=$(( count < 50 ? count : 50 ))
# What the page must contain: its attribute values and provenance rows, counted independently.
read -r expected_values expected_provenance < <(psql_q -F ' ' -c "
    WITH page AS (SELECT id FROM entities WHERE workspace_id = '$workspace' ORDER BY id LIMIT 50)
    SELECT (SELECT count(*) FROM entity_attribute_values v JOIN page p ON p.id = v.entity_id),
           (SELECT count(*) FROM entity_attribute_provenance pr JOIN page p ON p.id = pr.entity_id)") \
    || die "cannot count the page's attributes"
[[ "${expected_values:-}" =~ ^[0-9]+$ && "${expected_provenance:-}" =~ ^[0-9]+$ ]] \
    || die "cannot count the page's attributes"
if { [ "$rls" -eq 1 ] || [ "$owner_tx" -eq 1 ]; } && [ -z "$rls_user" ]; then
    rls_user="$(psql_q -c "SELECT user_id FROM workspace_members WHERE workspace_id = '$workspace'
                           AND role = 'OWNER' ORDER BY created_at, user_id LIMIT 1")" \
        || die "cannot read the workspace's owner"
    [ -n "$rls_user" ] || die "workspace $workspace has no OWNER for --rls"
fi
log "workspace $workspace: $count entities; page of $page_size with $expected_values values, $expected_provenance provenance rows; mode $mode"

results=()

# --- the SQL limit ---------------------------------------------------------------------------
run_sql_limit() {
    step="sql_limit: script"
    local script="$tmp/page.sql" defines=(-D "workspace_id=$workspace")
    if [ "$rls" -eq 1 ]; then
        {
            printf 'BEGIN;\nSET LOCAL ROLE authenticated;\n'
            printf "SELECT set_config('request.jwt.claim.sub', :user_id, true);\n"
            cat "$bench/sql/page.sql"
            printf '\nCOMMIT;\n'
        } > "$script"
        defines+=(-D "user_id=$rls_user")
    elif [ "$owner_tx" -eq 1 ]; then
        {
            printf 'BEGIN;\n'
            printf "SELECT set_config('request.jwt.claim.sub', :user_id, true);\n"
            cat "$bench/sql/page.sql"
            printf '\nCOMMIT;\n'
        } > "$script"
        defines+=(-D "user_id=$rls_user")
    else
        cp "$bench/sql/page.sql" "$script"
    fi

    step="sql_limit: check"
    local doc
    if [ "$rls" -eq 1 ] || [ "$owner_tx" -eq 1 ]; then
        doc="$(psql_q -v workspace_id="'$workspace'" -v user_id="'$rls_user'" -f "$script" | tail -n 1)" \
            || die "page.sql failed"
    else
        doc="$(psql_q -v workspace_id="'$workspace'" -f "$script")" || die "page.sql failed"
    fi
    local got
    got="$(jq -r '[(.edges | length), ([.edges[].node.attributes | length] | add // 0),
                   ([.edges[].node.attributes[] | select(.provenance != null)] | length)] | @tsv' <<<"$doc")" \
        || die "page.sql did not return a JSON document"
    [ "$got" = "$page_size	$expected_values	$expected_provenance" ] \
        || die "page.sql returned (entities, values, provenance) = ($got), expected ($page_size, $expected_values, $expected_provenance)"

    local rc=0
    if [ "$warmup" -gt 0 ]; then
        step="sql_limit: warm-up"
        pgbench -n -M prepared -c "$concurrency" -j "$threads" -T "$warmup" "${defines[@]}" -f "$script" \
            "$DATABASE_URL" > "$tmp/pgbench_warmup.out" 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || { tail -n 20 "$tmp/pgbench_warmup.out" >&2; die "pgbench exited with $rc"; }
    fi

    step="sql_limit: pgbench"
    log "pgbench -c $concurrency -j $threads -T $duration ($mode)"
    (cd "$tmp" && pgbench -n -M prepared -c "$concurrency" -j "$threads" -T "$duration" \
        "${defines[@]}" -f "$script" -l --log-prefix="$tmp/pgbench_log" "$DATABASE_URL") \
        > "$tmp/pgbench.out" 2> "$tmp/pgbench.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$tmp/pgbench.err" >&2
        die "pgbench exited with $rc"
    fi
    local processed failed tps
    processed="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/pgbench.out")"
    failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$tmp/pgbench.out")"
    tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$tmp/pgbench.out")"
    [ -n "$processed" ] && [ "$processed" -gt 0 ] || { cat "$tmp/pgbench.out" >&2; die "pgbench processed no transaction"; }
    [ "${failed:-0}" -eq 0 ] || die "pgbench: $failed failed transactions"
    [ -n "$tps" ] || die "pgbench printed no tps"
    grep -q '^number of clients: '"$concurrency"'$' "$tmp/pgbench.out" || die "pgbench did not run $concurrency clients"
    if grep -qi 'aborted' "$tmp/pgbench.out" "$tmp/pgbench.err"; then die "a pgbench client aborted"; fi
    # Per-transaction log: client transaction latency_us script epoch epoch_us.
    local stats
    stats="$(cat "$tmp"/pgbench_log.* | awk '{print $3}' | sort -n | awk '
        { v[NR] = $1; sum += $1 }
        END {
            if (NR == 0) exit 1
            p50 = v[int(NR * 0.50 + 0.999999)]; p90 = v[int(NR * 0.90 + 0.999999)]
            p99 = v[int(NR * 0.99 + 0.999999)]
            printf "%d %.3f %.3f %.3f %.3f %.3f", NR, sum / NR / 1000, p50 / 1000, p90 / 1000, p99 / 1000, v[NR] / 1000
        }')" || die "pgbench wrote no per-transaction log"
    local logged mean p50 p90 p99 max
    read -r logged mean p50 p90 p99 max <<<"$stats"
    [ "$logged" -eq "$processed" ] || die "pgbench logged $logged transactions but reported $processed"
    results+=("$(jq -nc --arg mode "$mode" --argjson c "$concurrency" --argjson d "$duration" \
        --argjson n "$processed" --argjson tps "$tps" --argjson mean "$mean" --argjson p50 "$p50" \
        --argjson p90 "$p90" --argjson p99 "$p99" --argjson max "$max" --argjson bytes "${#doc}" \
        --arg version "$(pgbench --version)" \
        --argjson w "$warmup" \
        '{workload: "page_read", peer: "sql_limit", tool: "pgbench -M prepared", tool_version: $version,
          mode: $mode, concurrency: $c, duration_s: $d, warmup_s: $w, requests: $n, errors: 0,
          rps: $tps, mean_ms: $mean, p50_ms: $p50, p90_ms: $p90, p99_ms: $p99, max_ms: $max,
          statements_per_request: (if $mode == "rls" then 5 elif $mode == "owner_tx" then 4 else 1 end),
          statements_note: "BEGIN, SET LOCAL ROLE, set_config, page, COMMIT under --rls; the same without SET LOCAL ROLE under --owner-in-transaction",
          response_bytes: $bytes,
          unit: "requests/s (pgbench tps excluding connection time); latency per transaction in ms"}')")
    log "sql_limit: $tps req/s, p50 $p50 ms, p99 $p99 ms ($processed transactions)"
}

# --- PostGraphile ----------------------------------------------------------------------------
run_postgraphile() {
    step="postgraphile: start"
    if ss -ltn 2>/dev/null | awk '{print $4}' | grep -Eq "[:.]$port\$"; then
        die "port $port is already in use (pass --port)"
    fi
    local url="http://127.0.0.1:$port/graphql"
    (
        cd "$bench/postgraphile"
        export PORT="$port"
        if [ "$rls" -eq 1 ]; then export BENCH_RLS_USER_ID="$rls_user"; else unset BENCH_RLS_USER_ID; fi
        exec node server.js
    ) > "$tmp/postgraphile.log" 2>&1 &
    server_pid=$!
    local waited=0
    until curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
            --data '{"query":"{__typename}"}' "$url"; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            tail -n 30 "$tmp/postgraphile.log" >&2
            die "PostGraphile exited before serving"
        fi
        [ "$waited" -lt 600 ] || { tail -n 30 "$tmp/postgraphile.log" >&2; die "PostGraphile not ready after 60 s"; }
        sleep 0.1
        waited=$(( waited + 1 ))
    done
    log "$(head -n 1 "$tmp/postgraphile.log")"

    step="postgraphile: check"
    jq -nc --rawfile q "$bench/postgraphile/query.graphql" --arg ws "$workspace" \
        '{query: $q, variables: {workspaceId: $ws}, operationName: "EntitiesPage"}' > "$tmp/body.json"
    local response got
    response="$(curl -sS -f -X POST -H 'content-type: application/json' --data @"$tmp/body.json" "$url")" \
        || die "PostGraphile answered the page query with an HTTP error"
    got="$(jq -r 'if .errors then "errors: \(.errors | tostring)" else
            [(.data.allEntities.edges | length),
             ([.data.allEntities.edges[].node.entityAttributeValuesByEntityIdAndWorkspaceId.nodes | length] | add // 0),
             ([.data.allEntities.edges[].node.entityAttributeProvenancesByEntityIdAndWorkspaceId.nodes | length] | add // 0)]
            | @tsv end' <<<"$response")" || die "PostGraphile did not return JSON"
    [ "$got" = "$page_size	$expected_values	$expected_provenance" ] \
        || die "PostGraphile returned (entities, values, provenance) = ($got), expected ($page_size, $expected_values, $expected_provenance)"

    local rc=0
    if [ "$warmup" -gt 0 ]; then
        step="postgraphile: warm-up"
        BENCH_BODY_FILE="$tmp/body.json" wrk -t "$threads" -c "$concurrency" -d "${warmup}s" --timeout 30s \
            -s "$here/wrk-graphql.lua" "$url" > "$tmp/wrk_warmup.out" 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || { cat "$tmp/wrk_warmup.out" >&2; die "wrk exited with $rc"; }
        [ "$(sed -n 's/^WRK_RESULT //p' "$tmp/wrk_warmup.out" | jq '.bad_responses + .errors_connect + .errors_read + .errors_write + .errors_status + .errors_timeout')" = 0 ] \
            || { cat "$tmp/wrk_warmup.out" >&2; die "errors during the warm-up"; }
    fi

    step="postgraphile: wrk"
    log "wrk -t $threads -c $concurrency -d ${duration}s ($mode)"
    BENCH_BODY_FILE="$tmp/body.json" wrk -t "$threads" -c "$concurrency" -d "${duration}s" --timeout 30s \
        -s "$here/wrk-graphql.lua" "$url" > "$tmp/wrk.out" 2> "$tmp/wrk.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$tmp/wrk.out" "$tmp/wrk.err" >&2; die "wrk exited with $rc"; }
    local line
    line="$(sed -n 's/^WRK_RESULT //p' "$tmp/wrk.out")"
    [ -n "$line" ] || { cat "$tmp/wrk.out" "$tmp/wrk.err" >&2; die "wrk printed no result"; }
    local problems
    problems="$(jq -r '[.bad_responses, .errors_connect, .errors_read, .errors_write, .errors_status, .errors_timeout] | add' <<<"$line")"
    if [ "$problems" -ne 0 ] || [ "$(jq -r .requests <<<"$line")" -eq 0 ]; then
        cat "$tmp/wrk.err" >&2
        die "wrk: $line"
    fi
    kill -0 "$server_pid" 2>/dev/null || die "PostGraphile died during the run"
    local rss_kb
    rss_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0)"
    results+=("$(jq -c --arg mode "$mode" --argjson c "$concurrency" --argjson d "$duration" \
        --argjson w "$warmup" --argjson rss "${rss_kb:-0}" --argjson bytes "${#response}" --arg version "$(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)" \
        '{workload: "page_read", peer: "postgraphile", tool: "wrk", tool_version: $version,
          postgraphile_version: "4.14.1", mode: $mode, concurrency: $c, duration_s: $d, warmup_s: $w,
          requests: .requests, errors: (.bad_responses + .errors_connect + .errors_read + .errors_write
                                         + .errors_status + .errors_timeout),
          rps: .rps, mean_ms: .mean_ms, p50_ms: .p50_ms, p90_ms: .p90_ms, p99_ms: .p99_ms, max_ms: .max_ms,
          statements_per_request: (if $mode == "rls" then 4 else 1 end),
          statements_note: "seen with log_statement=all: one SELECT building the JSON; under --rls also begin, set_config (role and claim), commit",
          server_peak_rss_mb: (($rss / 1024) * 10 | round / 10), response_bytes: $bytes,
          unit: "requests/s over the wrk run; latency per request in ms (wrk)"}' <<<"$line")")
    log "postgraphile: $(jq -r '"\(.rps) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms (\(.requests) requests)"' <<<"$line")"

    step="postgraphile: stop"
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

[ "$only" = postgraphile ] || run_sql_limit
[ "$only" = sql_limit ] || run_postgraphile

step="output"
printf '%s\n' "${results[@]}" > "$tmp/results.jsonl"
if [ -n "$out" ]; then
    cp "$tmp/results.jsonl" "$out.tmp" && mv "$out.tmp" "$out" || die "cannot write $out"
fi
cat "$tmp/results.jsonl"
