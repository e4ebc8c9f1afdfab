//! `entity/src` is exactly what sea-orm-cli generates from the migrated PostgreSQL schema: a
//! migration changed without `just entities` fails here.

use std::collections::BTreeMap;
use std::path::Path;

use tests::{Backend, TestDb, codegen, workspace_root};

fn read_folder(folder: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.insert(name, std::fs::read_to_string(&path)?);
    }
    Ok(files)
}

#[tokio::test]
async fn checked_in_entities_match_what_the_migrations_generate() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let out_dir = std::env::temp_dir().join(format!("entities-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    codegen::generate_entities(&test_db.url, &out_dir)?;
    let generated = read_folder(&out_dir)?;
    let checked_in = read_folder(&workspace_root().join("entity").join("src"))?;
    std::fs::remove_dir_all(&out_dir)?;
    assert_eq!(
        generated.keys().collect::<Vec<_>>(),
        checked_in.keys().collect::<Vec<_>>(),
        "entity/src has other files than the schema's tables: run `just entities`"
    );
    for (name, text) in &generated {
        assert!(
            checked_in.get(name) == Some(text),
            "entity/src/{name} drifted from the schema: run `just entities`"
        );
    }
    Ok(())
}

#[tokio::test]
async fn generated_models_read_and_write_rows_on_both_backends() -> anyhow::Result<()> {
    use sea_orm::{
        ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, Set,
    };
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let definitions = entity::integration_definitions::Entity::find()
            .all(&test_db.db)
            .await?;
        assert_eq!(definitions.len(), 6, "{backend:?}");
        let gmail = entity::integration_definitions::Entity::find()
            .filter(entity::integration_definitions::Column::Slug.eq("gmail"))
            .one(&test_db.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("gmail is seeded"))?;
        assert_eq!(gmail.nango_provider_key, "google-mail");
        let now = chrono::Utc::now().fixed_offset();
        let workspace = entity::workspaces::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            name: Set("Acme".to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&test_db.db)
        .await?;
        let connection = entity::integration_connections::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            workspace_id: Set(workspace.id),
            integration_id: Set(gmail.id),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&test_db.db)
        .await;
        // Columns with database defaults must be given on insert through the model; the default
        // values are read back when the row is.
        let connection = match connection {
            Ok(model) => model,
            Err(error) => {
                anyhow::bail!("{backend:?}: inserting a connection through the model: {error}")
            }
        };
        assert_eq!(connection.status, "PENDING_AUTHORIZATION", "{backend:?}");
        assert_eq!(connection.connection_status, "unknown", "{backend:?}");
        assert_eq!(connection.health_status, "UNKNOWN", "{backend:?}");
        assert_eq!(connection.sync_status, "idle", "{backend:?}");
        assert!(connection.is_active, "{backend:?}");
    }
    Ok(())
}
