//! What a migrated schema contains, read back from the database's own catalog: an [`Inventory`] of
//! names (tables, columns, indexes, constraints, policies, triggers) for "does it exist" checks,
//! and a [`dump`] of every definition for "is it the same" checks.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// The names a schema holds. Constraint names are those given explicitly (`CONSTRAINT name`) on
/// SQLite, and every named constraint on PostgreSQL.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Table names.
    pub tables: BTreeSet<String>,
    /// `table.column`.
    pub columns: BTreeSet<String>,
    /// Index names (explicit ones; not the automatic indexes of keys).
    pub indexes: BTreeSet<String>,
    /// Constraint names.
    pub constraints: BTreeSet<String>,
    /// `table.policy` (PostgreSQL only).
    pub policies: BTreeSet<String>,
    /// `table.trigger` (PostgreSQL only).
    pub triggers: BTreeSet<String>,
    /// Tables with row-level security enabled (PostgreSQL only).
    pub rls_tables: BTreeSet<String>,
}

async fn lines(db: &DatabaseConnection, sql: &str) -> Result<Vec<String>, sea_orm::DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

async fn set(db: &DatabaseConnection, sql: &str) -> Result<BTreeSet<String>, sea_orm::DbErr> {
    Ok(lines(db, sql).await?.into_iter().collect())
}

/// Reads the inventory of the connected database's main schema.
pub async fn inventory(db: &DatabaseConnection) -> Result<Inventory, sea_orm::DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => Ok(Inventory {
            tables: set(db, "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'").await?,
            columns: set(
                db,
                "SELECT table_name || '.' || column_name FROM information_schema.columns
                 WHERE table_schema = 'public'",
            )
            .await?,
            indexes: set(
                db,
                "SELECT i.indexname::text FROM pg_indexes i
                 WHERE i.schemaname = 'public' AND NOT EXISTS (
                     SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname
                     AND c.connamespace = 'public'::regnamespace)",
            )
            .await?,
            constraints: set(
                db,
                "SELECT conname::text FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
            )
            .await?,
            policies: set(
                db,
                "SELECT tablename || '.' || policyname FROM pg_policies WHERE schemaname = 'public'",
            )
            .await?,
            triggers: set(
                db,
                "SELECT c.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                 WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace",
            )
            .await?,
            rls_tables: set(
                db,
                "SELECT relname::text FROM pg_class
                 WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relrowsecurity",
            )
            .await?,
        }),
        _ => {
            let definitions = lines(
                db,
                "SELECT coalesce(sql, '') FROM sqlite_master WHERE type IN ('table', 'index')",
            )
            .await?;
            Ok(Inventory {
                tables: set(
                    db,
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .await?,
                columns: set(
                    db,
                    "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
                )
                .await?,
                indexes: set(
                    db,
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
                )
                .await?,
                constraints: definitions
                    .iter()
                    .flat_map(|sql| sql.split("CONSTRAINT ").skip(1))
                    .filter_map(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
                    .collect(),
                ..Inventory::default()
            })
        }
    }
}

/// Every definition of the schema as sorted text lines: tables and columns with types, defaults
/// and nullability, indexes, constraints, policies, triggers, RLS flags and grants. Two databases
/// with equal dumps have the same schema.
pub async fn dump(db: &DatabaseConnection) -> Result<Vec<String>, sea_orm::DbErr> {
    let queries: &[&str] = match db.get_database_backend() {
        DbBackend::Postgres => &[
            "SELECT concat_ws(' | ', 'column', table_name, column_name, data_type, is_nullable, column_default)
             FROM information_schema.columns WHERE table_schema = 'public'",
            "SELECT concat_ws(' | ', 'index', tablename, indexname, indexdef)
             FROM pg_indexes WHERE schemaname = 'public'",
            "SELECT concat_ws(' | ', 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid))
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
            "SELECT concat_ws(' | ', 'policy', tablename, policyname, cmd, roles::text, qual, with_check)
             FROM pg_policies WHERE schemaname = 'public'",
            "SELECT concat_ws(' | ', 'trigger', pg_get_triggerdef(t.oid))
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace",
            "SELECT concat_ws(' | ', 'table', relname, relrowsecurity::text, relforcerowsecurity::text)
             FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
            "SELECT concat_ws(' | ', 'grant', grantee, table_name, privilege_type)
             FROM information_schema.role_table_grants
             WHERE table_schema = 'public' AND grantee = 'authenticated'",
        ],
        _ => &[
            "SELECT 'object | ' || type || ' | ' || name || ' | ' || coalesce(sql, '')
             FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
            "SELECT 'column | ' || m.name || ' | ' || p.name || ' | ' || p.type || ' | ' || p.\"notnull\"
                 || ' | ' || coalesce(p.dflt_value, '') || ' | ' || p.pk
             FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'",
            "SELECT 'foreign key | ' || m.name || ' | ' || f.\"from\" || ' | ' || f.\"table\" || ' | '
                 || coalesce(f.\"to\", '') || ' | ' || f.on_delete
             FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
        ],
    };
    let mut all = Vec::new();
    for query in queries {
        all.extend(lines(db, query).await?);
    }
    all.sort();
    Ok(all)
}
