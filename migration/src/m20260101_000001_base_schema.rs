//! The base schema that seed 002 assumes: workspaces, users, their memberships and roles, and the
//! workspace's own typed entities with attribute values. On PostgreSQL it also provides what the
//! seeds' row-level-security policies need when not on Supabase: schema `auth`, `auth.uid()` and the
//! `authenticated` role, each created only when absent.
//!
//! Tables are created `IF NOT EXISTS`, so a database that already holds this base (the seeds'
//! situation) keeps its rows and goes on to the provenance migrations.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "CREATE TABLE IF NOT EXISTS workspaces (
            id {uuid} PRIMARY KEY {uuid_default},
            name TEXT NOT NULL,
            created_at {tstz} NOT NULL DEFAULT {now},
            updated_at {tstz} NOT NULL DEFAULT {now}
        )",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS users (
            id {uuid} PRIMARY KEY {uuid_default},
            email TEXT NOT NULL,
            display_name TEXT,
            created_at {tstz} NOT NULL DEFAULT {now},
            updated_at {tstz} NOT NULL DEFAULT {now}
        )",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS workspace_members (
            workspace_id {uuid} NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
            user_id {uuid} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            role VARCHAR(20) NOT NULL DEFAULT 'MEMBER'
                CONSTRAINT chk_workspace_members_role CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER')),
            created_at {tstz} NOT NULL DEFAULT {now},
            CONSTRAINT pk_workspace_members PRIMARY KEY (workspace_id, user_id)
        )",
    ),
    Both("CREATE INDEX IF NOT EXISTS idx_workspace_members_user_id ON workspace_members (user_id)"),
    Both(
        "CREATE TABLE IF NOT EXISTS attribute_definitions (
            id {uuid} PRIMARY KEY {uuid_default},
            workspace_id {uuid} NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
            entity_type VARCHAR(50) NOT NULL,
            key VARCHAR(100) NOT NULL,
            label TEXT NOT NULL,
            data_type VARCHAR(20) NOT NULL DEFAULT 'TEXT'
                CONSTRAINT chk_attribute_definitions_data_type CHECK (data_type IN
                    ('TEXT', 'NUMBER', 'BOOLEAN', 'DATE', 'DATETIME', 'EMAIL', 'URL', 'PHONE', 'MONEY', 'JSON')),
            created_at {tstz} NOT NULL DEFAULT {now},
            updated_at {tstz} NOT NULL DEFAULT {now},
            CONSTRAINT uq_attribute_definitions_workspace_type_key UNIQUE (workspace_id, entity_type, key)
        )",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS entities (
            id {uuid} PRIMARY KEY {uuid_default},
            workspace_id {uuid} NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
            entity_type VARCHAR(50) NOT NULL,
            display_name TEXT,
            archived_at {tstz},
            created_by {uuid} REFERENCES users (id) ON DELETE SET NULL,
            created_at {tstz} NOT NULL DEFAULT {now},
            updated_at {tstz} NOT NULL DEFAULT {now}
        )",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_entities_workspace_type ON entities (workspace_id, entity_type)",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS entity_attribute_values (
            entity_id {uuid} NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
            attribute_id {uuid} NOT NULL REFERENCES attribute_definitions (id) ON DELETE CASCADE,
            value {json} NOT NULL,
            updated_at {tstz} NOT NULL DEFAULT {now},
            CONSTRAINT pk_entity_attribute_values PRIMARY KEY (entity_id, attribute_id)
        )",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_entity_attribute_values_attribute_id
            ON entity_attribute_values (attribute_id)",
    ),
    // Supabase already has `auth.uid()` and `authenticated`; plain PostgreSQL gets compatible ones.
    // Roles are cluster-wide, so a concurrent creator (another database being migrated) is tolerated.
    Postgres(
        "DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
                BEGIN
                    CREATE ROLE authenticated NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END;
            END IF;
            IF NOT EXISTS (
                SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'auth' AND p.proname = 'uid'
            ) THEN
                CREATE SCHEMA IF NOT EXISTS auth;
                CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $uid$
                    SELECT nullif(coalesce(
                        current_setting('request.jwt.claim.sub', true),
                        current_setting('request.jwt.claims', true)::jsonb ->> 'sub'
                    ), '')::uuid
                $uid$;
                GRANT USAGE ON SCHEMA auth TO authenticated;
                GRANT EXECUTE ON FUNCTION auth.uid() TO authenticated;
            END IF;
        END
        $$",
    ),
    Postgres("GRANT USAGE ON SCHEMA public TO authenticated"),
    Postgres(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON workspaces, users, workspace_members,
            attribute_definitions, entities, entity_attribute_values TO authenticated",
    ),
    // Membership is readable by its own user only, so the other policies' subqueries on
    // workspace_members see exactly the caller's memberships and never recurse.
    Postgres("ALTER TABLE workspace_members ENABLE ROW LEVEL SECURITY"),
    Postgres("DROP POLICY IF EXISTS workspace_members_select_own ON workspace_members"),
    Postgres(
        "CREATE POLICY workspace_members_select_own ON workspace_members
            FOR SELECT TO authenticated USING (user_id = auth.uid())",
    ),
    Postgres("ALTER TABLE users ENABLE ROW LEVEL SECURITY"),
    Postgres("DROP POLICY IF EXISTS users_select_self ON users"),
    Postgres(
        "CREATE POLICY users_select_self ON users FOR SELECT TO authenticated USING (id = auth.uid())",
    ),
    Postgres("ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY"),
    Postgres("DROP POLICY IF EXISTS workspaces_select_members ON workspaces"),
    Postgres(
        "CREATE POLICY workspaces_select_members ON workspaces FOR SELECT TO authenticated
            USING (id IN (SELECT wm.workspace_id FROM workspace_members wm WHERE wm.user_id = auth.uid()))",
    ),
    Postgres("ALTER TABLE attribute_definitions ENABLE ROW LEVEL SECURITY"),
    Postgres("DROP POLICY IF EXISTS attribute_definitions_workspace_access ON attribute_definitions"),
    Postgres(
        "CREATE POLICY attribute_definitions_workspace_access ON attribute_definitions FOR ALL TO authenticated
            USING (workspace_id IN (SELECT wm.workspace_id FROM workspace_members wm WHERE wm.user_id = auth.uid()))
            WITH CHECK (workspace_id IN (SELECT wm.workspace_id FROM workspace_members wm WHERE wm.user_id = auth.uid()))",
    ),
    Postgres("ALTER TABLE entities ENABLE ROW LEVEL SECURITY"),
    Postgres("DROP POLICY IF EXISTS entities_workspace_access ON entities"),
    Postgres(
        "CREATE POLICY entities_workspace_access ON entities FOR ALL TO authenticated
            USING (workspace_id IN (SELECT wm.workspace_id FROM workspace_members wm WHERE wm.user_id = auth.uid()))
            WITH CHECK (workspace_id IN (SELECT wm.workspace_id FROM workspace_members wm WHERE wm.user_id = auth.uid()))",
    ),
    Postgres("ALTER TABLE entity_attribute_values ENABLE ROW LEVEL SECURITY"),
    Postgres(
        "DROP POLICY IF EXISTS entity_attribute_values_workspace_access ON entity_attribute_values",
    ),
    Postgres(
        "CREATE POLICY entity_attribute_values_workspace_access ON entity_attribute_values
            FOR ALL TO authenticated
            USING (EXISTS (
                SELECT 1 FROM entities e JOIN workspace_members wm ON wm.workspace_id = e.workspace_id
                WHERE e.id = entity_attribute_values.entity_id AND wm.user_id = auth.uid()))
            WITH CHECK (EXISTS (
                SELECT 1 FROM entities e JOIN workspace_members wm ON wm.workspace_id = e.workspace_id
                WHERE e.id = entity_attribute_values.entity_id AND wm.user_id = auth.uid()))",
    ),
];

// `auth.uid()` and `authenticated` stay: they may predate us (Supabase) and are shared by every
// database of the cluster.
const DOWN: &[Stmt] = &[
    // This policy reads workspace_members, which goes before workspaces (it references it).
    Postgres("DROP POLICY IF EXISTS workspaces_select_members ON workspaces"),
    Both("DROP TABLE IF EXISTS entity_attribute_values"),
    Both("DROP TABLE IF EXISTS entities"),
    Both("DROP TABLE IF EXISTS attribute_definitions"),
    Both("DROP TABLE IF EXISTS workspace_members"),
    Both("DROP TABLE IF EXISTS users"),
    Both("DROP TABLE IF EXISTS workspaces"),
];
