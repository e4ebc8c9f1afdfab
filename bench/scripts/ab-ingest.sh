#!/usr/bin/env bash
# Sync ingest before and after a change, on this machine, in one sitting:
#   bash bench/scripts/ab-ingest.sh <before-commit> [records]
# Builds `migration` and `bench-harness` (release) at <before-commit> in a temporary worktree and at
# the checkout, migrates a fresh PostgreSQL database for each run, runs `bench-harness ingest` three
# times per side, and prints records/s and the attribute history's size. The two builds share
# target/ (cargo hashes workspace members by relative path, so they would overwrite each other's
# artifacts): the checkout's sources are touched before its build so it really rebuilds.
set -euo pipefail
before=${1:?usage: ab-ingest.sh <before-commit> [records]}
records=${2:-20000}
root="$(cd "$(dirname "$0")/../.." && pwd)"
admin=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
tree="$(mktemp -d)/before"
git -C "$root" worktree add -q "$tree" "$before"
trap 'git -C "$root" worktree remove --force "$tree"' EXIT
run() {
    local dir=$1 label=$2
    (cd "$dir" && CARGO_TARGET_DIR="$root/target" cargo build -q --release --locked -p migration -p bench-harness --bins)
    for i in 1 2 3; do
        local db="ab_${label}_${i}_$$" url
        psql "$admin" -X -q -c "CREATE DATABASE $db" >/dev/null
        url="${admin%/*}/$db"
        DATABASE_URL="$url" "$root/target/release/migration" up >/dev/null
        local rps history="none"
        rps=$(DATABASE_URL="$url" "$root/target/release/bench-harness" ingest --records "$records" | tail -n 1 | jq -r .records_per_s)
        if [ "$(psql "$url" -X -A -t -c "SELECT to_regclass('entity_attribute_history') IS NOT NULL")" = "t" ]; then
            history=$(psql "$url" -X -A -t -c "SELECT count(*) || ' rows, ' || pg_total_relation_size('entity_attribute_history') || ' bytes' FROM entity_attribute_history")
        fi
        echo "$label run $i: $rps records/s; attribute history: $history"
        psql "$admin" -X -q -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
    done
}
run "$tree" before
find "$root/migration" "$root/entity" "$root/crates" "$root/apps" -name '*.rs' -exec touch {} +
run "$root" after
