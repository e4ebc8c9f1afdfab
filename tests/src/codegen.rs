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
    for entry in std::fs::read_dir(out_dir)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let fixed = fix_entity_keys(&text);
        if fixed != text {
            std::fs::write(&path, fixed)?;
        }
    }
    Ok(())
}

/// sea-orm-cli 2.0.4 renders the target of a composite foreign key with the columns of every
/// unique key on the target that shares one (`(Id, WorkspaceId, Id, …)` for our
/// `(entity_id, workspace_id) → entities (id, workspace_id)`), which would join on the wrong
/// columns. Our one composite key is written out as it is.
fn fix_entity_keys(text: &str) -> String {
    const FROM: &str = "from = \"(Column::EntityId, Column::WorkspaceId)\",";
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for index in 1..lines.len() {
        if lines[index - 1].trim() == FROM && lines[index].trim().starts_with("to = ") {
            let indent: String = lines[index]
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            lines[index] = format!(
                "{indent}to = \"(super::entities::Column::Id, super::entities::Column::WorkspaceId)\","
            );
        }
    }
    let mut fixed = lines.join("\n");
    if text.ends_with('\n') {
        fixed.push('\n');
    }
    fixed
}
