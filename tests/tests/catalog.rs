//! The catalog the migrations seed and the adapters' specs say the same: endpoints, scopes, PKCE,
//! token lifetimes, the objects synced and the entity type each becomes.

use std::time::Duration;

use providers::{ProviderKind, ProviderSpec};
use serde_json::{Value, json};

#[test]
fn the_seeded_catalog_agrees_with_the_provider_specs_and_mappings() {
    let catalog = migration::default_catalog();
    assert_eq!(catalog.len(), ProviderKind::ALL.len());
    for entry in catalog {
        let kind = ProviderKind::from_slug(entry.slug)
            .unwrap_or_else(|| panic!("no adapter for catalog slug `{}`", entry.slug));
        let spec = ProviderSpec::for_provider(kind);
        let auth = &entry.auth_config;
        assert_eq!(auth["authorize_url"], json!(spec.authorize_url), "{kind}");
        assert_eq!(auth["token_url"], json!(spec.token_url), "{kind}");
        assert_eq!(auth["scopes"], json!(spec.scopes), "{kind}");
        assert_eq!(auth["pkce"], json!(spec.pkce), "{kind}");
        let lifetime = auth
            .get("default_access_token_lifetime_seconds")
            .and_then(Value::as_u64)
            .map(Duration::from_secs);
        assert_eq!(lifetime, spec.default_token_lifetime, "{kind}");

        let objects = entry.capabilities["objects"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut listed: Vec<&str> = objects.keys().map(String::as_str).collect();
        let mut synced = providers::objects(kind).to_vec();
        listed.sort_unstable();
        synced.sort_unstable();
        assert_eq!(listed, synced, "{kind}: objects");
        for (object, entity_type) in &objects {
            let mapping = integrations::object_mapping(kind, object, None)
                .unwrap_or_else(|error| panic!("{kind} {object}: {error}"));
            assert_eq!(entity_type, mapping.entity_type, "{kind} {object}");
        }
    }
}
