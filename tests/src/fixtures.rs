//! A small world to test against: two workspaces with a member each, connections, entities,
//! attributes and provenance, written with plain SQL that runs on both back ends.

use anyhow::Context as _;
use sea_orm::{ConnectionTrait as _, Value};

use crate::TestDb;

/// New random id.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}

/// Shorthand for a bound value.
pub fn v(value: impl Into<Value>) -> Value {
    value.into()
}

/// The id of the catalog definition with this slug.
pub async fn definition_id(test_db: &TestDb, slug: &str) -> anyhow::Result<uuid::Uuid> {
    let row = test_db
        .db
        .query_one_raw(test_db.statement(
            "SELECT id FROM integration_definitions WHERE slug = $1",
            vec![v(slug)],
        ))
        .await?
        .with_context(|| format!("no definition `{slug}`"))?;
    Ok(row.try_get_by_index::<uuid::Uuid>(0)?)
}

/// A workspace and an active, connected connection to the integration `slug`, nothing else (no
/// user, no entity): what a sync needs. Returns (workspace, connection).
pub async fn active_connection(
    test_db: &TestDb,
    slug: &str,
) -> anyhow::Result<(uuid::Uuid, uuid::Uuid)> {
    let (workspace_id, connection_id) = (new_id(), new_id());
    let definition = definition_id(test_db, slug).await?;
    test_db
        .execute(
            "INSERT INTO workspaces (id, name) VALUES ($1, 'Acme')",
            vec![v(workspace_id)],
        )
        .await?;
    test_db
        .execute(
            "INSERT INTO integration_connections (id, workspace_id, integration_id, status, connection_status)
             VALUES ($1, $2, $3, 'ACTIVE', 'connected')",
            vec![v(connection_id), v(workspace_id), v(definition)],
        )
        .await?;
    Ok((workspace_id, connection_id))
}

/// One workspace with one user of the given role, one connection, one entity with one attribute
/// value and its provenance.
#[derive(Debug, Clone, Copy)]
pub struct Tenant {
    /// The workspace.
    pub workspace_id: uuid::Uuid,
    /// Its member.
    pub user_id: uuid::Uuid,
    /// Its connection to `integration_id`.
    pub connection_id: uuid::Uuid,
    /// The integration connected.
    pub integration_id: uuid::Uuid,
    /// An entity synced from that integration.
    pub entity_id: uuid::Uuid,
    /// The entity's `email` attribute.
    pub attribute_id: uuid::Uuid,
}

impl Tenant {
    /// Creates the tenant's rows; `role` is the user's role in the workspace.
    pub async fn create(test_db: &TestDb, role: &str, slug: &str) -> anyhow::Result<Self> {
        let tenant = Self {
            workspace_id: new_id(),
            user_id: new_id(),
            connection_id: new_id(),
            integration_id: definition_id(test_db, slug).await?,
            entity_id: new_id(),
            attribute_id: new_id(),
        };
        let statements: Vec<(&str, Vec<Value>)> = vec![
            (
                "INSERT INTO workspaces (id, name) VALUES ($1, 'Acme')",
                vec![v(tenant.workspace_id)],
            ),
            (
                "INSERT INTO users (id, email) VALUES ($1, 'someone@example.com')",
                vec![v(tenant.user_id)],
            ),
            (
                "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3)",
                vec![v(tenant.workspace_id), v(tenant.user_id), v(role)],
            ),
            (
                "INSERT INTO integration_connections (id, workspace_id, integration_id) VALUES ($1, $2, $3)",
                vec![
                    v(tenant.connection_id),
                    v(tenant.workspace_id),
                    v(tenant.integration_id),
                ],
            ),
            (
                "INSERT INTO attribute_definitions (id, workspace_id, entity_type, key, label)
                 VALUES ($1, $2, 'person', 'email', 'Email')",
                vec![v(tenant.attribute_id), v(tenant.workspace_id)],
            ),
            (
                "INSERT INTO entities (id, workspace_id, entity_type, source_type, source_integration_id,
                     source_external_id)
                 VALUES ($1, $2, 'person', 'INTEGRATION', $3, '1001')",
                vec![
                    v(tenant.entity_id),
                    v(tenant.workspace_id),
                    v(tenant.integration_id),
                ],
            ),
        ];
        // A schema from before migration m20261201_000009 has no `workspace_id` on an entity's
        // children (tests that migrate step by step create tenants on one).
        let children_carry_workspace = test_db
            .count(
                match test_db.db.get_database_backend() {
                    sea_orm::DbBackend::Sqlite => {
                        "SELECT count(*) FROM pragma_table_info('entity_attribute_values')
                         WHERE name = 'workspace_id'"
                    }
                    _ => {
                        "SELECT count(*) FROM information_schema.columns
                         WHERE table_name = 'entity_attribute_values' AND column_name = 'workspace_id'"
                    }
                },
                vec![],
            )
            .await?
            > 0;
        // The column and its bound value ($3 for values, $4 for provenance), when it exists.
        let column = if children_carry_workspace {
            ", workspace_id"
        } else {
            ""
        };
        let bound = |values: Vec<Value>| {
            let mut values = values;
            if children_carry_workspace {
                values.push(v(tenant.workspace_id));
            }
            values
        };
        let children: Vec<(String, Vec<Value>)> = vec![
            (
                format!(
                    "INSERT INTO entity_attribute_values (entity_id, attribute_id, value{column})
                     VALUES ($1, $2, '\"ada@example.com\"'{})",
                    if children_carry_workspace { ", $3" } else { "" }
                ),
                bound(vec![v(tenant.entity_id), v(tenant.attribute_id)]),
            ),
            (
                format!(
                    "INSERT INTO entity_attribute_provenance (entity_id, attribute_id, source_type,
                         source_integration_id, source_external_field{column})
                     VALUES ($1, $2, 'INTEGRATION', $3, 'email'{})",
                    if children_carry_workspace { ", $4" } else { "" }
                ),
                bound(vec![
                    v(tenant.entity_id),
                    v(tenant.attribute_id),
                    v(tenant.integration_id),
                ]),
            ),
        ];
        let statements = statements
            .into_iter()
            .map(|(sql, values)| (sql.to_owned(), values))
            .chain(children);
        for (sql, values) in statements {
            test_db
                .execute(&sql, values)
                .await
                .with_context(|| format!("fixture statement: {sql}"))?;
        }
        Ok(tenant)
    }
}
