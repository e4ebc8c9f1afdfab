//! Support for the workspace's end-to-end tests, generators and benchmarks: throwaway databases on
//! PostgreSQL and SQLite, schema inventories and dumps, and entity generation with sea-orm-cli.

pub mod catalog;
pub mod clock;
pub mod codegen;
pub mod fixtures;
pub mod test_db;

pub use catalog::{Inventory, dump, inventory};
pub use clock::{ManualClock, NoWait};
pub use test_db::{Backend, TestDb};

/// The workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

/// A binary of this workspace built beside the running test (`target/<profile>/<name>`), as
/// `just test` builds them first.
pub fn workspace_binary(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(std::path::Path::parent)
        .map(|profile_dir| profile_dir.join(name))
        .filter(|path| path.exists())
        .ok_or_else(|| {
            anyhow::anyhow!("the {name} binary is not built; run the suite with `just test`")
        })
}
