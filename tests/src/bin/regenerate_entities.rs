//! `just entities`: migrates a throwaway PostgreSQL database and regenerates `entity/src` from it.

use tests::{Backend, TestDb, codegen, workspace_root};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let out_dir = workspace_root().join("entity").join("src");
    std::fs::remove_dir_all(&out_dir)?;
    codegen::generate_entities(&test_db.url, &out_dir)?;
    println!("regenerated {}", out_dir.display());
    Ok(())
}
