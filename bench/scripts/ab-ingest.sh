#!/usr/bin/env bash
# Sync ingest before and after a change, on this machine, in one sitting:
#   bash bench/scripts/ab-ingest.sh <before-commit> [records] [runs]
# Builds `migration` and `bench-harness` (release) at <before-commit> in a temporary worktree and at
# the checkout (uncommitted changes included), keeps both binaries aside, then runs `bench-harness
# ingest` alternately (before, after, before, …; `runs` each, default 4), each run on a freshly
# migrated PostgreSQL database, and prints records/s per run (first load, and the re-sync of the
# same records unchanged), each side's means, and the attribute history's size. Alternating spreads the machine's drift (page cache, autovacuum, other load) over
# both sides. The two builds share target/ (cargo hashes workspace members by relative path, so
# they would overwrite each other's artifacts): the checkout's sources are touched before its build
# so it really rebuilds.
set -euo pipefail
before=${1:?usage: ab-ingest.sh <before-commit> [records] [runs]}
records=${2:-20000}
runs=${3:-4}
root="$(cd "$(dirname "$0")/../.." && pwd)"
admin=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work="$(mktemp -d)"
tree="$work/before"
git -C "$root" worktree add -q "$tree" "$before"
trap 'git -C "$root" worktree remove --force "$tree"; rm -rf "$work"' EXIT
build() {
    local dir=$1 label=$2
    (cd "$dir" && CARGO_TARGET_DIR="$root/target" cargo build -q --release --locked -p migration -p bench-harness --bins)
    mkdir -p "$work/bin-$label"
    cp "$root/target/release/migration" "$root/target/release/bench-harness" "$work/bin-$label/"
}
build "$tree" before
find "$root/migration" "$root/entity" "$root/crates" "$root/apps" -name '*.rs' -exec touch {} +
build "$root" after
declare -A total=([before]=0 [after]=0) resync=([before]=0 [after]=0)
for i in $(seq 1 "$runs"); do
    for label in before after; do
        db="ab_${label}_${i}_$$"
        psql "$admin" -X -q -c "CREATE DATABASE $db" >/dev/null
        url="${admin%/*}/$db"
        DATABASE_URL="$url" "$work/bin-$label/migration" up >/dev/null
        history="none"
        line=$(DATABASE_URL="$url" "$work/bin-$label/bench-harness" ingest --records "$records" | tail -n 1)
        rps=$(jq -r .records_per_s <<<"$line")
        again=$(jq -r '.resync_records_per_s // 0' <<<"$line")
        if [ "$(psql "$url" -X -A -t -c "SELECT to_regclass('entity_attribute_history') IS NOT NULL")" = "t" ]; then
            history=$(psql "$url" -X -A -t -c "SELECT count(*) || ' rows, ' || pg_total_relation_size('entity_attribute_history') || ' bytes' FROM entity_attribute_history")
        fi
        echo "$label run $i: $rps records/s, re-sync $again records/s; attribute history: $history"
        total[$label]=$(echo "${total[$label]} + $rps" | bc)
        resync[$label]=$(echo "${resync[$label]} + $again" | bc)
        psql "$admin" -X -q -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
    done
done
for label in before after; do
    echo "$label mean: $(echo "scale=1; ${total[$label]} / $runs" | bc) records/s, re-sync $(echo "scale=1; ${resync[$label]} / $runs" | bc) records/s"
done
