//! `auth.uid()` as Supabase defines it. The base migration's version read
//! `request.jwt.claim.sub` first and fell back to `request.jwt.claims` only when the setting was
//! never defined; in a reused session, where an earlier transaction's `SET LOCAL` leaves the
//! setting defined but empty, it answered NULL, and an empty `request.jwt.claims` raised a JSON
//! error. Supabase's definition treats `''` as unset for both styles, so a pool shared with
//! PostgREST sees the same caller. Only our own function (owned by the migrating role) is
//! replaced: Supabase's is left as it is.

use crate::sql::Stmt::{self, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[Postgres(
    "DO $$
    BEGIN
        IF EXISTS (
            SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'auth' AND p.proname = 'uid' AND p.proowner = current_user::regrole
        ) THEN
            CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $uid$
                SELECT coalesce(
                    nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
                )::uuid
            $uid$;
        END IF;
    END
    $$",
)];

const DOWN: &[Stmt] = &[Postgres(
    "DO $$
    BEGIN
        IF EXISTS (
            SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'auth' AND p.proname = 'uid' AND p.proowner = current_user::regrole
        ) THEN
            CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $uid$
                SELECT nullif(coalesce(
                    current_setting('request.jwt.claim.sub', true),
                    current_setting('request.jwt.claims', true)::jsonb ->> 'sub'
                ), '')::uuid
            $uid$;
        END IF;
    END
    $$",
)];
