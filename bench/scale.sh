#!/usr/bin/env bash
# `just bench-scale`: how the figures move with work, release builds, each part on its own fresh
# PostgreSQL database (never analyzed by hand; the engine's own ANALYZE schedule runs):
#
#   1. flat       300,000 Stripe customers into one workspace (bench-harness ingest --skip-copy
#                 --neighbour): records/s over the first and the last 10%, and another
#                 workspace's entities page (50 with attributes and provenance, under RLS, the
#                 API's statements) idle and during the sync; CPU of PostgreSQL and the harness
#   2. tenants    200 tenants of 1,000 records alone, 4 of 100,000 alone, then all 204 at once, on
#                 4 workers (bench-harness tenants): when each group was done
#   3. growth     the page SQL under RLS (pgbench, c=1 and c=32) and an ingest of 20,000 records
#                 at 100,000 entities, then again at 1,000,000
#
# Results: bench/results/scale.json and scale.md, written only when every part succeeded; any
# failure stops with `bench-scale: FAILED at <step>: <why>`. Takes about 9 minutes on 2 cores.
# SCALE_QUICK=1 runs every part at a tenth of the size (a check of the script, not a figure).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

step="arguments"
log() { printf 'bench-scale: %s\n' "$*" >&2; }
die() { printf 'bench-scale: FAILED at %s: %s\n' "$step" "$*" >&2; exit 1; }
[ $# -eq 0 ] || die "no arguments (SCALE_QUICK=1 for a tenth of the size)"

if [ "${SCALE_QUICK:-0}" = 1 ]; then
    flat=30000 small=20 small_records=1000 big=4 big_records=10000 grow_small=10000 grow_big=100000 grow_ingest=2000 duration=3
else
    flat=300000 small=200 small_records=1000 big=4 big_records=100000 grow_small=100000 grow_big=1000000 grow_ingest=20000 duration=10
fi
admin_url="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
t0=$SECONDS
tmp="$(mktemp -d "${TMPDIR:-/tmp}/bench-scale.XXXXXX")"
results="$tmp/results.jsonl"
dbs=()
cleanup() {
    for db in "${dbs[@]}"; do
        psql "$admin_url" -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

step="tools"
bash "$here/scripts/install-tools.sh" || die "bench/scripts/install-tools.sh failed"
for tool in psql pgbench jq; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done

step="build"
# The same build as bench/run.sh (the same features, so neither rebuilds the other's crates).
log "cargo build --release (server, migration, bench-harness, bench-migrate)"
cargo build --release --locked --bins -p server -p migration -p bench-harness -p tests >&2 \
    || die "cargo build --release failed"
bin="$root/target/release"

# A fresh migrated database; its URL on stdout.
fresh_db() {
    local db="scale_$(date +%s)_$$_${#dbs[@]}"
    psql "$admin_url" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null \
        || die "cannot create database $db on $admin_url"
    dbs+=("$db")
    local url="${admin_url%/*}/$db"
    DATABASE_URL="$url" "$bin/migration" up >&2 || die "migrating $db failed"
    printf '%s' "$url"
}

# --- 1. a flat rate into one never-analyzed workspace, and its neighbour ---------------------------
step="flat"
url="$(fresh_db)"
log "flat: $flat customers into one workspace, a neighbour reading its page meanwhile"
DATABASE_URL="$url" "$bin/bench-harness" ingest --records "$flat" --skip-copy --neighbour >> "$results" \
    || die "bench-harness ingest --skip-copy --neighbour failed"
log "flat: $(tail -n 1 "$results" | jq -r '"first 10% \(.first_10pct_records_per_s)/s, last 10% \(.last_10pct_records_per_s)/s; neighbour p99 idle \(.neighbour_page.idle.p99_ms) ms, during \(.neighbour_page.during_sync.p99_ms) ms"')"

# --- 2. many tenants at once -----------------------------------------------------------------------
for scenario in small big mixed; do
    step="tenants: $scenario"
    case "$scenario" in
        small) counts=(--small "$small" --big 0) ;;
        big) counts=(--small 0 --big "$big") ;;
        mixed) counts=(--small "$small" --big "$big") ;;
    esac
    url="$(fresh_db)"
    log "tenants: $scenario (${counts[*]}) on 4 workers"
    DATABASE_URL="$url" "$bin/bench-harness" tenants "${counts[@]}" --small-records "$small_records" \
        --big-records "$big_records" --workers 4 --scenario "$scenario" >> "$results" \
        || die "bench-harness tenants ($scenario) failed"
    log "tenants: $scenario: $(tail -n 1 "$results" | jq -c '{small: .small.last_done_s, big: .big.last_done_s, all: .all_done_s}')"
done

# --- 3. growth: the page and the ingest at two table sizes -----------------------------------------
step="growth"
url="$(fresh_db)"
workspace=6f1c0b4e-0000-4000-8000-000000000001
other=6f1c0b4e-0000-4000-8000-000000000002
grow() {  # grow <entities in the table> <workspace to fill> <entities to add>
    step="growth: fill to $1"
    log "growth: generating $3 entities (table: $1)"
    psql "$url" -X -q -A -t -v ON_ERROR_STOP=1 -v workspace_id="$2" -v entities="$3" -v seed=0.42 \
        -f "$here/sql/generate.sql" > /dev/null || die "bench/sql/generate.sql failed"
    psql "$url" -X -q -c "ANALYZE" >/dev/null || die "ANALYZE failed"
    for c in 1 32; do
        step="growth: page at $1, c=$c"
        DATABASE_URL="$url" bash "$here/scripts/peers.sh" --workspace "$workspace" --concurrency "$c" \
            --duration "$duration" --warmup 1 --rls --only sql_limit --port 5057 \
            | jq -c --argjson n "$1" '. + {workload: "growth_page", table_entities: $n}' >> "$results" \
            || die "bench/scripts/peers.sh at $1 entities failed"
    done
    step="growth: ingest at $1"
    DATABASE_URL="$url" "$bin/bench-harness" ingest --records "$grow_ingest" --skip-copy \
        | jq -c --argjson n "$1" '. + {workload: "growth_ingest", table_entities: $n}' >> "$results" \
        || die "bench-harness ingest at $1 entities failed"
}
grow "$grow_small" "$workspace" "$grow_small"
grow "$grow_big" "$other" $(( grow_big - grow_small ))

# --- report -----------------------------------------------------------------------------------------
step="report"
jq -s --arg started "$started_at" --argjson total $(( SECONDS - t0 )) \
    --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" --arg cores "$(nproc)" \
    --arg pg "$(psql "$admin_url" -X -A -t -c 'SHOW server_version')" \
    -f "$here/scale-report.jq" "$results" > "$tmp/scale.json" || die "building the report failed"
jq -r -f "$here/scale-report-md.jq" "$tmp/scale.json" > "$tmp/scale.md" || die "building the markdown failed"
mkdir -p "$here/results"
cp "$tmp/scale.json" "$here/results/scale.json"
cp "$tmp/scale.md" "$here/results/scale.md"
cat "$here/results/scale.md"
log "done in $(( SECONDS - t0 ))s: bench/results/scale.json, bench/results/scale.md"
