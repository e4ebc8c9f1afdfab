//! Layout rules as tests: what the architecture says is absent stays absent, every file says what it
//! is for, every recipe has a doc line, and every migration is mapped to its seed.

use std::path::{Path, PathBuf};

use tests::workspace_root;

fn read(relative: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(workspace_root().join(relative))?)
}

fn rust_files(folder: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, found)?;
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
    Ok(())
}

#[test]
fn providers_has_no_dependency_on_a_workspace_crate() -> anyhow::Result<()> {
    let manifest = read("crates/providers/Cargo.toml")?;
    assert!(
        !manifest.contains("path ="),
        "crates/providers must stay a plain library"
    );
    for crate_name in ["migration", "entity", "integrations", "server"] {
        let depends = manifest
            .lines()
            .any(|line| line.trim_start().starts_with(crate_name));
        assert!(!depends, "crates/providers depends on {crate_name}");
    }
    Ok(())
}

#[test]
fn migration_never_imports_entity() -> anyhow::Result<()> {
    let manifest = read("migration/Cargo.toml")?;
    assert!(
        !manifest
            .lines()
            .any(|line| line.trim_start().starts_with("entity"))
    );
    Ok(())
}

#[test]
fn every_rust_file_starts_with_a_sentence_on_its_purpose() -> anyhow::Result<()> {
    let mut files = Vec::new();
    for folder in [
        "apps",
        "crates",
        "migration/src",
        "tests/src",
        "tests/tests",
    ] {
        rust_files(&workspace_root().join(folder), &mut files)?;
    }
    let undocumented: Vec<_> = files
        .iter()
        .filter(|path| !std::fs::read_to_string(path).is_ok_and(|text| text.starts_with("//!")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "files without a //! line: {undocumented:?}"
    );
    Ok(())
}

#[test]
fn every_justfile_recipe_has_a_doc_line() -> anyhow::Result<()> {
    let justfile = read("justfile")?;
    let lines: Vec<&str> = justfile.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let is_recipe = !line.starts_with([' ', '\t', '#', '['])
            && !line.starts_with("set ")
            && !line.starts_with("export ")
            && line.contains(':')
            && !line.contains(":=");
        if !is_recipe {
            continue;
        }
        let previous = lines[..index]
            .iter()
            .rev()
            .find(|line| !line.starts_with('['));
        assert!(
            previous.is_some_and(|line| line.starts_with("# ")),
            "recipe without a doc line: {line}"
        );
    }
    Ok(())
}

#[test]
fn migration_readme_maps_every_migration_file() -> anyhow::Result<()> {
    let readme = read("migration/README.md")?;
    let mut files = Vec::new();
    rust_files(&workspace_root().join("migration/src"), &mut files)?;
    for path in files {
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('m') && name.chars().nth(1).is_some_and(|c| c.is_ascii_digit()) {
            assert!(
                readme.contains(&name),
                "migration/README.md does not map {name}"
            );
        }
    }
    Ok(())
}
