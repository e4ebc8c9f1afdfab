//! Entity generation: runs sea-orm-cli against a freshly migrated PostgreSQL database, with the one
//! set of flags that produced `entity/src`, so `just entities` and the drift test agree.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

/// The sea-orm-cli flags `entity/src` is generated with.
pub const GENERATE_FLAGS: &[&str] = &[
    "--lib",
    "--with-serde",
    "both",
    "--entity-format",
    "compact",
];

/// Writes the entities of the database at `database_url` into `out_dir`.
pub fn generate_entities(database_url: &str, out_dir: &Path) -> anyhow::Result<()> {
    let output = Command::new("sea-orm-cli")
        .args([
            "generate",
            "entity",
            "--database-url",
            database_url,
            "--output-dir",
        ])
        .arg(out_dir)
        .args(GENERATE_FLAGS)
        .output()
        .context(
            "running sea-orm-cli (install it with `just tools`, or run tests through `just test`)",
        )?;
    if !output.status.success() {
        bail!(
            "sea-orm-cli failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
