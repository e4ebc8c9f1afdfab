//! The API's own GraphQL types, converted from database models and engine types (models are
//! never exposed directly).

use async_graphql::{Enum, Json, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A member's role in a workspace.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Owns the workspace.
    Owner,
    /// Manages connections, mappings and syncs.
    Admin,
    /// Reads and edits entity attributes.
    Member,
}

impl Role {
    /// The stored role name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "OWNER" => Some(Self::Owner),
            "ADMIN" => Some(Self::Admin),
            "MEMBER" => Some(Self::Member),
            _ => None,
        }
    }

    /// Whether the role manages connections.
    pub fn manages(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// The signed-in user.
#[derive(SimpleObject, Debug, Clone)]
pub struct Viewer {
    /// Their id.
    pub id: Uuid,
    /// Their email.
    pub email: String,
}

/// A workspace the viewer belongs to.
#[derive(SimpleObject, Debug, Clone)]
pub struct Workspace {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The viewer's role in it.
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An integration of the catalog.
#[derive(SimpleObject, Debug, Clone)]
pub struct Integration {
    /// Its id.
    pub id: Uuid,
    /// Its stable slug (`hubspot`, …).
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// `CRM`, `PAYMENTS`, `SUPPORT` or `EMAIL`.
    pub category: String,
    /// One sentence about it.
    pub description: Option<String>,
    /// What it syncs and how (objects, deletes, webhooks).
    pub capabilities: Json<serde_json::Value>,
    /// How it authenticates (mode and scopes; never a secret).
    pub auth_config: Json<serde_json::Value>,
}

/// A workspace's connection to an integration.
#[derive(SimpleObject, Debug, Clone)]
pub struct Connection {
    /// Its id.
    pub id: Uuid,
    /// The workspace.
    pub workspace_id: Uuid,
    /// The integration's slug.
    pub integration_slug: String,
    /// `PENDING_AUTHORIZATION`, `ACTIVE`, `PAUSED`, `ERROR` or `DISCONNECTED`.
    pub status: String,
    /// `connected`, `disconnected`, `error`, `validating` or `unknown`.
    pub connection_status: String,
    /// `HEALTHY`, `WARNING`, `ERROR` or `UNKNOWN`.
    pub health_status: String,
    /// `idle`, `syncing`, `error` or `disabled`.
    pub sync_status: String,
    /// Sanitized account facts from the last validation.
    pub account_info: Option<Json<serde_json::Value>>,
    /// The last validation's error.
    pub validation_error: Option<String>,
    /// When it was last validated.
    pub last_connection_validation: Option<DateTime<Utc>>,
    /// When its health was last checked.
    pub last_health_check: Option<DateTime<Utc>>,
    /// When it last finished a sync.
    pub last_sync_at: Option<DateTime<Utc>>,
}
