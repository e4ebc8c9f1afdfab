# Builds bench/results/scale.json from bench/scale.sh's JSON lines (jq -s): the figures, how each
# moves, and each target of issues 16 (growth) and 17 (tenants, flat rate, neighbours).
def only($workload):
  [.[] | select(.workload == $workload)]
  | if length == 1 then .[0] else error("expected one \($workload) result, got \(length)") end;
def scenario($s):
  [.[] | select(.workload == "tenants" and .scenario == $s)]
  | if length == 1 then .[0] else error("expected one tenants \($s) result, got \(length)") end;
def growth($w; $c):
  [.[] | select(.workload == $w and ((.concurrency // 0) == $c))] | sort_by(.table_entities)
  | if length == 2 then . else error("expected two \($w) c=\($c) results, got \(length)") end;
def r3: . * 1000 | round / 1000;
def target($name; $value; $op; $bound; $unit):
  {name: $name, value: $value, target: "\($op) \($bound)", unit: $unit,
   met: (if $op == ">=" then $value >= $bound else $value <= $bound end)};

only("sync_ingest_flat") as $flat
| scenario("small") as $small
| scenario("big") as $big
| scenario("mixed") as $mixed
| growth("growth_page"; 1) as $page1
| growth("growth_page"; 32) as $page32
| growth("growth_ingest"; 0) as $ingest
| {
    suite: "just bench-scale", started_at: $started, commit: $commit, total_seconds: $total,
    machine: {cpu: $cpu, cores: ($cores | tonumber), postgresql: $pg},
    flat: $flat,
    tenants: {small_alone: $small, big_alone: $big, mixed: $mixed,
              small_mixed_over_alone: ($mixed.small.last_done_s / $small.small.last_done_s | r3),
              big_mixed_over_alone: ($mixed.big.records_per_s / $big.big.records_per_s | r3)},
    growth: {page_c1: $page1, page_c32: $page32, ingest: $ingest,
             page_c1_large_over_small: ($page1[1].rps / $page1[0].rps | r3),
             page_c32_large_over_small: ($page32[1].rps / $page32[0].rps | r3),
             ingest_large_over_small: ($ingest[1].records_per_s / $ingest[0].records_per_s | r3)},
    targets: [
      target("flat rate: last 10% / first 10% of \($flat.records) records"; $flat.last_over_first; ">="; 0.8; "ratio of records/s"),
      target("neighbour page p99 during the sync / idle"; ($flat.neighbour_page.during_sync.p99_ms / $flat.neighbour_page.idle.p99_ms | r3); "<="; 2; "ratio (idle \($flat.neighbour_page.idle.p99_ms) ms, during \($flat.neighbour_page.during_sync.p99_ms) ms)"),
      target("small tenants done: with big tenants / alone"; ($mixed.small.last_done_s / $small.small.last_done_s | r3); "<="; 2; "ratio of the last small tenant's finish (\($mixed.small.last_done_s) s vs \($small.small.last_done_s) s)"),
      target("big tenants' throughput: with small tenants / alone"; ($mixed.big.records_per_s / $big.big.records_per_s | r3); ">="; 0.8; "ratio of records/s (\($mixed.big.records_per_s) vs \($big.big.records_per_s))"),
      target("page SQL c=1 under RLS: \($page1[1].table_entities) / \($page1[0].table_entities) entities"; ($page1[1].rps / $page1[0].rps | r3); ">="; 0.8; "ratio of requests/s"),
      target("page SQL c=32 under RLS: \($page32[1].table_entities) / \($page32[0].table_entities) entities"; ($page32[1].rps / $page32[0].rps | r3); ">="; 0.8; "ratio of requests/s"),
      target("ingest per record: \($ingest[1].table_entities) / \($ingest[0].table_entities) entities"; ($ingest[1].records_per_s / $ingest[0].records_per_s | r3); ">="; 0.8; "ratio of records/s")
    ]
  }
