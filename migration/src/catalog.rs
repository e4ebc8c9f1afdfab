//! The integration catalog that seed 002's V005 inserts: the six definitions, with what each one
//! syncs, how it authenticates and how it sends webhooks, as data for the engine and the web app.
//!
//! Seeding is idempotent (`ON CONFLICT (slug) DO NOTHING`): running it again changes nothing, and
//! an operator's later edits to a definition are never overwritten.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;
use serde_json::{Value as Json, json};

/// One catalog row as the seed writes it.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// Unique, stable identifier used in URLs (`/webhooks/{slug}`) and GraphQL.
    pub slug: &'static str,
    /// Display name.
    pub name: &'static str,
    /// One of `CRM`, `PAYMENTS`, `SUPPORT`, `EMAIL`.
    pub category: &'static str,
    /// The provider key of the adapter (`google-mail` for Gmail), stored in `nango_provider_key`.
    pub provider_key: &'static str,
    /// One sentence for the catalog page.
    pub description: &'static str,
    /// Objects synced and the entity type each becomes, delete detection, webhook support.
    pub capabilities: Json,
    /// How the engine reads incrementally: strategy, cursor field, page size, default schedule.
    pub sync_config: Json,
    /// Auth mode, endpoints, scopes, PKCE, token lifetime when the provider omits `expires_in`.
    pub auth_config: Json,
}

/// The six definitions the platform ships with.
pub fn default_catalog() -> Vec<CatalogEntry> {
    vec![
        CatalogEntry {
            slug: "hubspot",
            name: "HubSpot",
            category: "CRM",
            provider_key: "hubspot",
            description: "Contacts, companies and deals from a HubSpot portal.",
            capabilities: json!({
                "objects": {"contacts": "person", "companies": "company", "deals": "deal"},
                "incremental": true,
                "deletes": "archived records (search excludes them; list with archived=true)",
                "webhooks": {"supported": true, "scope": "app", "signature": "X-HubSpot-Signature-v3"},
                "validation": "GET /account-info/v3/details",
                "account_id": "portalId"
            }),
            sync_config: json!({
                "strategy": "search_by_modified_date",
                "cursor_field": "hs_lastmodifieddate",
                "page_size": 200,
                "max_results_per_query": 10000,
                "default_schedule": "*/30 * * * *"
            }),
            auth_config: json!({
                "mode": "OAUTH2",
                "authorize_url": "https://app.hubspot.com/oauth/authorize",
                "token_url": "https://api.hubapi.com/oauth/v3/token",
                "scopes": ["oauth", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.deals.read"],
                "pkce": true,
                "refresh": true,
                "default_access_token_lifetime_seconds": 1800
            }),
        },
        CatalogEntry {
            slug: "salesforce",
            name: "Salesforce",
            category: "CRM",
            provider_key: "salesforce",
            description: "Accounts, contacts, leads and opportunities from a Salesforce org.",
            capabilities: json!({
                "objects": {"Account": "company", "Contact": "person", "Lead": "lead", "Opportunity": "deal"},
                "incremental": true,
                "deletes": "queryAll with IsDeleted = true",
                "webhooks": {"supported": true, "scope": "connection", "signature": "outbound message OrganizationId"},
                "validation": "GET {identity URL from the token response} (else /services/oauth2/userinfo)",
                "account_id": "organization_id"
            }),
            sync_config: json!({
                "strategy": "soql_by_system_modstamp",
                "cursor_field": "SystemModstamp",
                "page_size": 2000,
                "default_schedule": "*/30 * * * *"
            }),
            auth_config: json!({
                "mode": "OAUTH2",
                "authorize_url": "https://login.salesforce.com/services/oauth2/authorize",
                "token_url": "https://login.salesforce.com/services/oauth2/token",
                "sandbox_host": "https://test.salesforce.com",
                "scopes": ["api", "refresh_token"],
                "pkce": true,
                "refresh": true,
                "api_base_from_token_response": "instance_url",
                "default_access_token_lifetime_seconds": 7200,
                "config": ["sandbox"]
            }),
        },
        CatalogEntry {
            slug: "stripe",
            name: "Stripe",
            category: "PAYMENTS",
            provider_key: "stripe",
            description: "Customers, invoices and charges from a Stripe account.",
            capabilities: json!({
                "objects": {"customers": "customer", "invoices": "invoice", "charges": "charge"},
                "incremental": true,
                "deletes": "*.deleted events",
                "webhooks": {"supported": true, "scope": "connection", "signature": "Stripe-Signature"},
                "validation": "GET /v1/account",
                "account_id": "account id (acct_…)"
            }),
            sync_config: json!({
                "strategy": "list_by_created_then_events",
                "cursor_field": "created",
                "page_size": 100,
                "default_schedule": "*/30 * * * *"
            }),
            auth_config: json!({
                "mode": "API_KEY",
                "alternatives": ["OAUTH2"],
                "api_key": {"kinds": ["restricted (rk_…)", "secret (sk_…)"], "read_permissions": ["customers", "invoices", "charges", "events"]},
                "authorize_url": "https://connect.stripe.com/oauth/authorize",
                "token_url": "https://connect.stripe.com/oauth/token",
                "revoke_url": "https://connect.stripe.com/oauth/deauthorize",
                "scopes": ["read_only"],
                "pkce": false,
                "refresh": false,
                "tokens_expire": false
            }),
        },
        CatalogEntry {
            slug: "zendesk",
            name: "Zendesk",
            category: "SUPPORT",
            provider_key: "zendesk",
            description: "Tickets, users and organizations from a Zendesk Support instance.",
            capabilities: json!({
                "objects": {"tickets": "ticket", "users": "person", "organizations": "company"},
                "incremental": true,
                "deletes": "ticket status deleted; organization deleted_at",
                "webhooks": {"supported": true, "scope": "connection", "signature": "X-Zendesk-Webhook-Signature"},
                "validation": "GET /api/v2/users/me.json",
                "account_id": "subdomain"
            }),
            sync_config: json!({
                "strategy": "incremental_export",
                "cursor_field": "after_cursor",
                "page_size": 1000,
                "default_schedule": "*/30 * * * *"
            }),
            auth_config: json!({
                "mode": "OAUTH2",
                "authorize_url": "https://{subdomain}.zendesk.com/oauth/authorizations/new",
                "token_url": "https://{subdomain}.zendesk.com/oauth/tokens",
                "scopes": ["read"],
                "pkce": true,
                "refresh": true,
                "rotating_refresh_tokens": true,
                "default_access_token_lifetime_seconds": 1800,
                "config": ["subdomain"]
            }),
        },
        CatalogEntry {
            slug: "intercom",
            name: "Intercom",
            category: "SUPPORT",
            provider_key: "intercom",
            description: "Contacts, companies and conversations from an Intercom workspace.",
            capabilities: json!({
                "objects": {"contacts": "person", "companies": "company", "conversations": "conversation"},
                "incremental": true,
                "deletes": "contact.deleted webhook",
                "webhooks": {"supported": true, "scope": "app", "signature": "X-Hub-Signature"},
                "validation": "GET /me",
                "account_id": "app id and region"
            }),
            sync_config: json!({
                "strategy": "search_by_updated_at",
                "cursor_field": "updated_at",
                "page_size": 150,
                "default_schedule": "*/30 * * * *"
            }),
            auth_config: json!({
                "mode": "OAUTH2",
                "authorize_url": "https://app.intercom.com/oauth",
                "token_url": "https://api.intercom.io/auth/eagle/token",
                "scopes": [],
                "pkce": false,
                "refresh": false,
                "tokens_expire": false,
                "regions": {"us": "https://api.intercom.io", "eu": "https://api.eu.intercom.io", "au": "https://api.au.intercom.io"},
                "config": ["region"]
            }),
        },
        CatalogEntry {
            slug: "gmail",
            name: "Gmail",
            category: "EMAIL",
            provider_key: "google-mail",
            description: "Messages from a Gmail mailbox.",
            capabilities: json!({
                "objects": {"messages": "email"},
                "incremental": true,
                "deletes": "messagesDeleted in history",
                "webhooks": {"supported": true, "scope": "app", "signature": "Pub/Sub push OIDC token"},
                "validation": "GET /gmail/v1/users/me/profile",
                "account_id": "emailAddress"
            }),
            sync_config: json!({
                "strategy": "list_then_history",
                "cursor_field": "historyId",
                "page_size": 500,
                "expired_cursor": "full resync",
                "default_schedule": "*/30 * * * *"
            }),
            auth_config: json!({
                "mode": "OAUTH2",
                "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
                "token_url": "https://oauth2.googleapis.com/token",
                "revoke_url": "https://oauth2.googleapis.com/revoke",
                "scopes": ["https://www.googleapis.com/auth/gmail.readonly"],
                "extra_authorize_params": {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
                "pkce": true,
                "refresh": true,
                "default_access_token_lifetime_seconds": 3600
            }),
        },
    ]
}

/// Inserts the default catalog, leaving rows whose slug already exists untouched.
/// Returns how many definitions were inserted.
pub async fn seed_integration_catalog<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let mut inserted = 0;
    for entry in default_catalog() {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("integration_definitions"))
            .columns([
                Alias::new("slug"),
                Alias::new("name"),
                Alias::new("category"),
                Alias::new("nango_provider_key"),
                Alias::new("description"),
                Alias::new("capabilities"),
                Alias::new("sync_config"),
                Alias::new("auth_config"),
            ])
            .values([
                entry.slug.into(),
                entry.name.into(),
                entry.category.into(),
                entry.provider_key.into(),
                entry.description.into(),
                entry.capabilities.into(),
                entry.sync_config.into(),
                entry.auth_config.into(),
            ])
            .map_err(|error| DbErr::Custom(format!("catalog entry {}: {error}", entry.slug)))?
            .on_conflict(
                OnConflict::column(Alias::new("slug"))
                    .do_nothing()
                    .to_owned(),
            );
        inserted += db.execute(&insert).await?.rows_affected();
    }
    Ok(inserted)
}

/// The slugs of the default catalog, for the seed migration's `down`.
pub fn default_slugs() -> Vec<&'static str> {
    default_catalog().iter().map(|entry| entry.slug).collect()
}
