//! Our own secret-bearing tables: `integration_credentials` (a connection's tokens or API key and its
//! per-account webhook secret, each sealed with AES-256-GCM, with the key id that sealed it) and
//! `oauth_states` (single-use authorization `state`, stored as a hash, with the sealed PKCE
//! verifier). On PostgreSQL both have row-level security on and no policy and no grant, so the
//! `authenticated` role can never read them; only the engine, as table owner, does.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "CREATE TABLE IF NOT EXISTS integration_credentials (
            connection_id {uuid} PRIMARY KEY REFERENCES integration_connections (id) ON DELETE CASCADE,
            credential_type VARCHAR(20) NOT NULL
                CONSTRAINT chk_integration_credentials_credential_type
                CHECK (credential_type IN ('OAUTH2', 'API_KEY')),
            key_id VARCHAR(100) NOT NULL,
            sealed_secret {bytes} NOT NULL,
            sealed_webhook_secret {bytes},
            scopes TEXT,
            access_token_expires_at {tstz},
            refreshed_at {tstz},
            version BIGINT NOT NULL DEFAULT 0,
            created_at {tstz} NOT NULL DEFAULT {now},
            updated_at {tstz} NOT NULL DEFAULT {now}
        )",
    ),
    // Finds credentials to refresh ahead of expiry.
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_credentials_expires_at
            ON integration_credentials (access_token_expires_at) WHERE access_token_expires_at IS NOT NULL",
    ),
    // Re-sealing after a key rotation walks the rows of the old key.
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_credentials_key_id ON integration_credentials (key_id)",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS oauth_states (
            id {uuid} PRIMARY KEY {uuid_default},
            state_hash VARCHAR(128) NOT NULL,
            workspace_id {uuid} NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
            user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            integration_id {uuid} NOT NULL REFERENCES integration_definitions (id) ON DELETE CASCADE,
            connection_id {uuid} REFERENCES integration_connections (id) ON DELETE CASCADE,
            key_id VARCHAR(100),
            sealed_pkce_verifier {bytes},
            redirect_uri TEXT NOT NULL,
            provider_config {json} NOT NULL DEFAULT '{}',
            expires_at {tstz} NOT NULL,
            consumed_at {tstz},
            created_at {tstz} NOT NULL DEFAULT {now},
            CONSTRAINT uq_oauth_states_state_hash UNIQUE (state_hash),
            CONSTRAINT chk_oauth_states_pkce_key CHECK (sealed_pkce_verifier IS NULL OR key_id IS NOT NULL)
        )",
    ),
    Both("CREATE INDEX IF NOT EXISTS idx_oauth_states_expires_at ON oauth_states (expires_at)"),
    Postgres("ALTER TABLE integration_credentials ENABLE ROW LEVEL SECURITY"),
    Postgres("ALTER TABLE oauth_states ENABLE ROW LEVEL SECURITY"),
    Postgres(
        "DROP TRIGGER IF EXISTS set_integration_credentials_updated_at ON integration_credentials",
    ),
    Postgres(
        "CREATE TRIGGER set_integration_credentials_updated_at BEFORE UPDATE ON integration_credentials
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
];

const DOWN: &[Stmt] = &[
    Both("DROP TABLE IF EXISTS oauth_states"),
    Both("DROP TABLE IF EXISTS integration_credentials"),
];
