#!/usr/bin/env bash
# The entities page read (bench/graphql/entities-page.graphql: 50 entities with their attributes
# and provenance, signed in, RLS on) before and after a change, on this machine, in one sitting:
#   bash bench/scripts/ab-page.sh <before-commit> [entities] [seconds] [runs]
# Builds `server` and `migration` (release) at <before-commit> in a temporary worktree and at the
# checkout (uncommitted changes included) and keeps both aside. Each side gets its own database,
# migrated by its own `migration` and filled by bench/sql/generate.sql (`entities`, default
# 20,000; the same seed for both). Then, `runs` times (default 3), each side's server is started
# on its database (no background workers, rate limits off) and measured with wrk at concurrency 1
# and 32 for `seconds` (default 5) after a 1 s warm-up, the sides alternating. Prints requests/s
# per run and each side's means; any wrong answer or wrk error stops the script.
set -euo pipefail
before=${1:?usage: ab-page.sh <before-commit> [entities] [seconds] [runs]}
entities=${2:-20000}
seconds=${3:-5}
runs=${4:-3}
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/bench"
admin=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
workspace=6f1c0b4e-0000-4000-8000-000000000001
work="$(mktemp -d)"
tree="$work/before"
server_pid=""
declare -A url owner
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    for label in before after; do
        [ -z "${url[$label]:-}" ] || psql "$admin" -X -q -c "DROP DATABASE IF EXISTS ab_page_${label}_$$ WITH (FORCE)" >/dev/null 2>&1 || true
    done
    git -C "$root" worktree remove --force "$tree" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
die() { echo "ab-page: $*" >&2; exit 1; }
bash "$here/scripts/install-tools.sh" >/dev/null || die "bench/scripts/install-tools.sh failed"

git -C "$root" worktree add -q "$tree" "$before"
build() {
    local dir=$1 label=$2
    (cd "$dir" && CARGO_TARGET_DIR="$root/target" cargo build -q --release --locked -p migration -p server --bins)
    mkdir -p "$work/bin-$label"
    cp "$root/target/release/migration" "$root/target/release/server" "$work/bin-$label/"
}
build "$tree" before
find "$root/migration" "$root/entity" "$root/crates" "$root/apps" -name '*.rs' -exec touch {} +
build "$root" after

for label in before after; do
    db="ab_page_${label}_$$"
    psql "$admin" -X -q -c "CREATE DATABASE $db" >/dev/null
    url[$label]="${admin%/*}/$db"
    DATABASE_URL="${url[$label]}" "$work/bin-$label/migration" up >/dev/null
    generated="$(psql "${url[$label]}" -X -q -A -t -v ON_ERROR_STOP=1 -v workspace_id="$workspace" \
        -v entities="$entities" -v seed=0.42 -f "$here/sql/generate.sql" | tail -n 1)"
    owner[$label]="$(jq -r .owner_user_id <<<"$generated")"
    psql "${url[$label]}" -X -q -c "VACUUM ANALYZE" >/dev/null
done

secret="$(openssl rand -hex 32)"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() {
    local header payload signature
    header="$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)"
    payload="$(jq -nc --arg sub "$1" --argjson exp $(( $(date +%s) + 3600 )) \
        '{sub: $sub, email: "bench-owner@example.com", exp: $exp}' | b64url)"
    signature="$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)"
    printf '%s.%s.%s' "$header" "$payload" "$signature"
}
jq -nc --rawfile q "$here/graphql/entities-page.graphql" --arg ws "$workspace" \
    '{query: $q, variables: {workspaceId: $ws}, operationName: "EntitiesPage"}' > "$work/body.json"
port=$(( 20000 + $$ % 20000 ))
endpoint="http://127.0.0.1:$port/graphql"

measure() {  # measure <label> <concurrency> <seconds> -> requests/s
    local label=$1 c=$2 d=$3 out="$work/wrk.out" line
    BENCH_BODY_FILE="$work/body.json" BENCH_AUTHORIZATION="Bearer $(jwt "${owner[$label]}")" \
        wrk -t $(( c < 2 ? c : 2 )) -c "$c" -d "${d}s" --timeout 30s -s "$here/scripts/wrk-graphql.lua" "$endpoint" > "$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed ($label, c=$c)"; }
    line="$(sed -n 's/^WRK_RESULT //p' "$out")"
    [ -n "$line" ] && [ "$(jq '.bad_responses + .errors_connect + .errors_read + .errors_write + .errors_status + .errors_timeout' <<<"$line")" = 0 ] \
        || { cat "$out" >&2; die "bad responses ($label, c=$c)"; }
    jq -r .rps <<<"$line"
}

declare -A total
for i in $(seq 1 "$runs"); do
    for label in before after; do
        env DATABASE_URL="${url[$label]}" BIND_ADDR="127.0.0.1:$port" AUTH_JWT_SECRET="$secret" \
            BACKGROUND_WORKERS=0 RATE_LIMIT_PER_IP=0 RATE_LIMIT_PER_USER=0 RATE_LIMIT_WEBHOOKS=0 \
            TOKEN_ENCRYPTION_KEYS="bench:$(openssl rand -base64 32)" RUST_LOG=warn \
            "$work/bin-$label/server" > "$work/server-$label.log" 2>&1 &
        server_pid=$!
        for _ in $(seq 1 300); do
            curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break
            kill -0 "$server_pid" 2>/dev/null || { cat "$work/server-$label.log" >&2; die "the $label server exited"; }
            sleep 0.1
        done
        row="$label run $i:"
        for c in 1 32; do
            measure "$label" "$c" 1 >/dev/null
            rps="$(measure "$label" "$c" "$seconds")"
            row="$row c=$c $rps req/s"
            total[$label,$c]=$(echo "${total[$label,$c]:-0} + $rps" | bc)
        done
        echo "$row"
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    done
done
for label in before after; do
    echo "$label mean: c=1 $(echo "scale=1; ${total[$label,1]} / $runs" | bc) req/s, c=32 $(echo "scale=1; ${total[$label,32]} / $runs" | bc) req/s"
done
