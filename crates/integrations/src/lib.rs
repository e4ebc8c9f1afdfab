//! The integration engine: connections and credentials, validation, health, cache, sync with
//! per-attribute provenance, the webhook inbox and jobs, on the schema of the `migration` crate and
//! the models of `entity`.
//!
//! This crate is a skeleton until its own issue lands; the schema it will read and write exists.
