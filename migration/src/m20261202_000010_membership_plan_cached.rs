//! The membership functions of the row-level-security policies as PL/pgSQL with a cached plan
//! (PostgreSQL).
//!
//! `m20261201_000009` wrote `member_workspace_ids()` and `admin_workspace_ids()` in SQL with
//! `SET search_path`. A function with a `SET` clause runs through the GUC save-and-restore path,
//! and a SQL function that cannot be inlined plans its body at each call: a page read calls it
//! once per table its statement reads (four InitPlans), so under pgbench the page SQL ran 17%
//! slower under RLS than as the owner. As PL/pgSQL without `SET`, the body is planned once per
//! session and only executed afterwards: 3% (alternating runs, `bench/NOTES.md`).
//!
//! The bodies no longer depend on `search_path` without the `SET`: every name is
//! schema-qualified, the operator included (`OPERATOR(pg_catalog.=)`), so a caller's
//! `search_path` cannot change what they resolve to. They still run as the caller (not `SECURITY
//! DEFINER`), STABLE, with the same results; the policies that call them are unchanged.
//!
//! SQLite has no row-level security: nothing to do. `down` restores the SQL versions.

use crate::sql::Stmt::{self, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Postgres(
        "CREATE OR REPLACE FUNCTION public.member_workspace_ids() RETURNS pg_catalog.uuid[]
         LANGUAGE plpgsql STABLE AS $$
         BEGIN
             RETURN (SELECT coalesce(pg_catalog.array_agg(m.workspace_id), '{}'::pg_catalog.uuid[])
                     FROM public.workspace_members AS m
                     WHERE m.user_id OPERATOR(pg_catalog.=) auth.uid());
         END
         $$",
    ),
    Postgres(
        "CREATE OR REPLACE FUNCTION public.admin_workspace_ids() RETURNS pg_catalog.uuid[]
         LANGUAGE plpgsql STABLE AS $$
         BEGIN
             RETURN (SELECT coalesce(pg_catalog.array_agg(m.workspace_id), '{}'::pg_catalog.uuid[])
                     FROM public.workspace_members AS m
                     WHERE m.user_id OPERATOR(pg_catalog.=) auth.uid()
                       AND m.role OPERATOR(pg_catalog.=) ANY (ARRAY['OWNER', 'ADMIN']::pg_catalog.text[]));
         END
         $$",
    ),
];

const DOWN: &[Stmt] = &[
    Postgres(
        "CREATE OR REPLACE FUNCTION member_workspace_ids() RETURNS uuid[]
         LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
             SELECT coalesce(array_agg(workspace_id), '{}'::uuid[])
             FROM workspace_members WHERE user_id = auth.uid()
         $$",
    ),
    Postgres(
        "CREATE OR REPLACE FUNCTION admin_workspace_ids() RETURNS uuid[]
         LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
             SELECT coalesce(array_agg(workspace_id), '{}'::uuid[])
             FROM workspace_members WHERE user_id = auth.uid() AND role IN ('OWNER', 'ADMIN')
         $$",
    ),
];
