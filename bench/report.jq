# Builds bench/results/<name>.json from the suite's JSON lines (jq -s): the figures, the ratios the
# issue asks for, and each target with where we stand. Arguments come from bench/run.sh.
def one_in($workload; $peer; $c; $mode):
  [.[] | select(.workload == $workload and (.peer // "") == $peer and (.concurrency // 0) == $c
                and (.mode // "rls") == $mode)]
  | if length == 1 then .[0] else error("expected one \($workload) \($peer) c=\($c) \($mode) result, got \(length)") end;
def one($workload; $peer; $c): one_in($workload; $peer; $c; "rls");
def only($workload):
  [.[] | select(.workload == $workload)]
  | if length == 1 then .[0] else error("expected one \($workload) result, got \(length)") end;
def r3: . * 1000 | round / 1000;
# The alternating rounds of the page SQL under RLS or as owner at one concurrency, in round order.
def rounds($c; $mode):
  [.[] | select(.workload == "page_sql_rls_cost" and .concurrency == $c and .mode == $mode)]
  | sort_by(.round)
  | if length > 0 then . else error("expected page_sql_rls_cost rounds at c=\($c) \($mode), got none") end;
# One row standing for rounds of the same load: mean requests/s and latencies.
def mean_row:
  (map(.rps) | add / length | r3) as $rps
  | .[0] + {rps: $rps, p50_ms: (map(.p50_ms) | add / length | r3),
            p99_ms: (map(.p99_ms) | add / length | r3), rounds: length, round: null};
def mb: . / 1024 * 10 | round / 10;
def target($name; $value; $op; $bound; $unit):
  {name: $name, value: $value, target: "\($op) \($bound)", unit: $unit,
   met: (if $op == ">=" then $value >= $bound elif $op == "<=" then $value <= $bound else $value < $bound end)};

. as $all
| (reduce (1, 32) as $c ({};
    .["c\($c)"] = (($all | one("page_read"; "ours"; $c)) as $ours
      | ($all | one("page_read"; "postgraphile"; $c)) as $pg
      | ($all | one("page_read"; "sql_limit"; $c)) as $limit
      | ($all | rounds($c; "rls")) as $rls_rounds
      | ($all | rounds($c; "owner_tx")) as $owner_rounds
      | {ours: $ours, postgraphile: $pg, sql_limit: $limit,
         sql_as_owner: ($owner_rounds | mean_row), sql_under_rls: ($rls_rounds | mean_row),
         ours_over_postgraphile: ($ours.rps / $pg.rps | r3),
         ours_over_sql_limit: ($ours.rps / $limit.rps | r3),
         rls_over_owner: (($owner_rounds | map(.rps) | add) / ($rls_rounds | map(.rps) | add) | r3),
         rls_over_owner_per_round: [range(0; $rls_rounds | length) as $i
                                    | $owner_rounds[$i].rps / $rls_rounds[$i].rps | r3]}))) as $page
| only("webhook_intake") as $webhooks
| only("webhook_intake_with_workers") as $webhooks_with_workers
| only("sync_ingest") as $ingest
| only("migrate") as $migrate
| only("hostile_mix") as $hostile
| {
    suite: (if $quick == 1 then "just bench-quick (reduced)" else "just bench" end),
    started_at: $started, commit: $commit, total_seconds: $total, tools_and_build_seconds: $build,
    machine: {cpu: $cpu, cores: ($cores | tonumber), postgresql: $pg},
    data: {workspace_entities: $entities, attributes_per_entity: 10, integrations: 3, seed: 0.42,
           generate_seconds: $gen, generator: "bench/sql/generate.sql (psql, bulk INSERT … SELECT)"},
    page_read: ($page + {
      query: "entities(first: 50) with all attributes, provenance and integration; ours: bench/graphql/entities-page.graphql, PostGraphile: bench/postgraphile/query.graphql, limit: bench/sql/page.sql",
      mode: "all three as role authenticated with the owner's claim, in a transaction (row-level security on); sql_as_owner: the same page SQL as the database owner (row-level security bypassed) in the same transaction and set_config, without SET LOCAL ROLE",
      rls_over_owner_note: "requests/s of the page SQL as owner over the same under RLS (total over alternating rounds of equal duration, so the ratio of time per page), both in BEGIN … COMMIT with the claim set (RLS also runs SET LOCAL ROLE); sql_as_owner and sql_under_rls are the rounds' means"}),
    server_peak_rss_mb: {after_page_reads: ($page_rss | mb), peak: ($rss | mb),
                         unit: "MB, VmHWM of our server process: the page reads' process after them; peak: the larger of it after the webhooks and the API-only process"},
    webhook_intake: $webhooks,
    webhook_intake_with_workers: $webhooks_with_workers,
    sync_ingest: $ingest,
    migrate: $migrate,
    hostile_mix: $hostile,
    targets: [
      target("page read c=1: ours / PostGraphile"; $page.c1.ours_over_postgraphile; ">="; 2; "ratio of requests/s"),
      target("page read c=32: ours / PostGraphile"; $page.c32.ours_over_postgraphile; ">="; 2; "ratio of requests/s"),
      target("page read c=32: ours / SQL limit"; $page.c32.ours_over_sql_limit; ">="; 0.8; "ratio of requests/s (c=1: \($page.c1.ours_over_sql_limit))"),
      target("page SQL c=1: under RLS / as owner"; $page.c1.rls_over_owner; "<="; 1.15; "ratio of time per page (c=32: \($page.c32.rls_over_owner))"),
      target("SQL statements per page read"; $page.c1.ours.statements_per_request; "<="; 5; "statements"),
      target("sync ingest"; $ingest.records_per_s; ">="; 10000; "records/s"),
      target("sync ingest / COPY with the tables' foreign keys"; $ingest.ratio_to_copy_with_foreign_keys; ">="; 0.8; "ratio of records/s"),
      target("re-sync of \($ingest.records) unchanged records"; $ingest.resync_records_per_s; ">="; 50000; "records/s"),
      target("webhook intake c=32 (API-only process)"; $webhooks.rps; ">="; 10000; "deliveries/s"),
      target("webhook intake c=32 (workers running)"; $webhooks_with_workers.rps; ">="; 5000; "deliveries/s"),
      target("simple query p99 at c=8 under refused fan-out and alias bombs"; $hostile.attacked_p99_ms; "<"; 50; "ms (quiet: \($hostile.quiet_p99_ms) ms)"),
      target("server peak RSS"; ($rss | mb); "<"; 100; "MB"),
      target("provenance migrations V001-V006"; ($migrate.total_seconds | r3); "<"; 2; "seconds on \($migrate.entities) entities")
    ]
  }
