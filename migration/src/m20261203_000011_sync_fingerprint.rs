//! What a sync last made of an entity, as a digest, so that a re-sync of an unchanged record
//! reads neither its values nor its provenance.
//!
//! `entities.sync_fingerprint` (nullable bytes) is written by the sync together with the entity:
//! a digest of the record it applied, of the mapping it applied it with, and of the merge rules'
//! version, set only when applying that record again to the entity as it then stands would change
//! nothing and count no conflict. Every other writer of an entity's attributes (a user edit, an
//! override cleared, a conflict resolved) clears it in the same statement that raises
//! `sync_version`, and archiving clears it. `NULL` means "read everything". `down` drops the
//! column.

use crate::sql::Stmt::{self, Both, Postgres, Sqlite};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Postgres("ALTER TABLE entities ADD COLUMN sync_fingerprint BYTEA"),
    Sqlite("ALTER TABLE entities ADD COLUMN sync_fingerprint BLOB"),
];

const DOWN: &[Stmt] = &[Both("ALTER TABLE entities DROP COLUMN sync_fingerprint")];
