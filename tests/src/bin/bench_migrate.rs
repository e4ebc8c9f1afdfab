//! `just bench-migrate`: fills a throwaway PostgreSQL database holding the base schema with
//! 1,000,000 entities (`BENCH_ENTITIES` to change), applies seed 002's provenance migrations
//! (V001–V006) one at a time, prints the seconds each took and in all, and writes them to
//! `bench/results/migrate.json`. Each migration is one transaction, so its time bounds how long it
//! can hold a lock on `entities`.

use std::time::Instant;

use anyhow::{Context as _, ensure};
use migration::{Migrator, MigratorTrait as _, N_PROVENANCE_MIGRATIONS};
use sea_orm::ConnectionTrait as _;
use serde_json::json;
use tests::{Backend, TestDb, workspace_root};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n_entities: i64 = std::env::var("BENCH_ENTITIES")
        .ok()
        .map(|text| text.parse())
        .transpose()
        .context("BENCH_ENTITIES must be a whole number")?
        .unwrap_or(1_000_000);
    let test_db = TestDb::empty(Backend::Postgres).await?;
    let db = &test_db.db;
    Migrator::up(db, Some(1)).await.context("base migration")?;

    let fill_started = Instant::now();
    db.execute_unprepared(
        "INSERT INTO workspaces (name) SELECT 'workspace ' || g FROM generate_series(1, 100) g",
    )
    .await?;
    db.execute_unprepared(&format!(
        "WITH numbered AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM workspaces)
         INSERT INTO entities (workspace_id, entity_type, display_name)
         SELECT numbered.id, (ARRAY['company', 'person', 'deal'])[1 + g % 3], 'entity ' || g
         FROM generate_series(0, {n_entities} - 1) g JOIN numbered ON numbered.n = g % 100"
    ))
    .await?;
    db.execute_unprepared("VACUUM ANALYZE entities").await?;
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    println!("filled {n_entities} entities in {fill_seconds:.1} s");

    let names: Vec<String> = Migrator::migrations()
        .iter()
        .skip(1)
        .take(N_PROVENANCE_MIGRATIONS as usize)
        .map(|migration| migration.name().to_owned())
        .collect();
    let mut per_migration = Vec::new();
    let started = Instant::now();
    for name in &names {
        let step_started = Instant::now();
        Migrator::up(db, Some(1))
            .await
            .with_context(|| format!("applying {name}"))?;
        let seconds = step_started.elapsed().as_secs_f64();
        println!("  {name}: {seconds:.3} s");
        per_migration.push(json!({"migration": name, "seconds": seconds}));
    }
    let total_seconds = started.elapsed().as_secs_f64();

    let n_user_created = test_db
        .count(
            "SELECT count(*) FROM entities WHERE source_type = 'USER_CREATED' AND sync_version = 0",
            vec![],
        )
        .await?;
    ensure!(
        n_user_created == n_entities,
        "expected {n_entities} USER_CREATED entities after migrating, found {n_user_created}"
    );
    println!(
        "provenance migrations V001-V006 on {n_entities} entities: {total_seconds:.3} s (target < 2 s)"
    );

    // BENCH_MIGRATE_OUT: where `just bench-quick` keeps its reduced figure apart from this one.
    let out = std::env::var_os("BENCH_MIGRATE_OUT").map_or_else(
        || {
            workspace_root()
                .join("bench")
                .join("results")
                .join("migrate.json")
        },
        std::path::PathBuf::from,
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let report = json!({
        "workload": "apply seed 002 V001-V006 to a PostgreSQL database holding the base schema and N entities",
        "entities": n_entities,
        "unit": "seconds (wall clock, one transaction per migration)",
        "measured_by": "just bench-migrate",
        "total_seconds": total_seconds,
        "target_seconds": 2.0,
        "fill_seconds": fill_seconds,
        "per_migration": per_migration,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")?;
    Ok(())
}
