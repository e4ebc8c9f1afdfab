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
