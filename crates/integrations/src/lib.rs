//! The integration engine: connections and credentials, validation, health, cache, sync with
//! per-attribute provenance, the webhook inbox and jobs, on the schema of the `migration` crate and
//! the models of `entity`, calling providers through `providers`.
//!
//! What is here and tested:
//! - [`SyncEngine`]: claims a (connection, object type), reads pages through a
//!   [`providers::ProviderClient`], and writes entities, values and provenance per page in one
//!   transaction with the cursor checkpoint; user overrides always win.
//! - [`object_mapping`]: the default field mapping of every synced object plus a connection's
//!   `property_mappings`.

mod error;
mod mapping;
mod sync;

pub use error::EngineError;
pub use mapping::{ObjectMapping, is_attribute_key, object_mapping};
pub use sync::{SyncClaim, SyncEngine, SyncReport};
