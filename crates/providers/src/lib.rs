//! Provider adapters for HubSpot, Salesforce, Stripe, Zendesk, Intercom and Gmail, as a plain library
//! that other services can depend on: no database, no server, no environment, no files.
//!
//! This crate is a skeleton until its own issue lands (OAuth2, token sealing, validation,
//! incremental readers, rate limits, webhook verification). Its one rule already holds and is
//! tested: it has no dependency on any crate of this workspace.
