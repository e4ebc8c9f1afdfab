//! Default mappings exist for every synced object and custom mappings are checked.

use providers::ProviderKind;
use serde_json::json;

use super::object_mapping;

#[test]
fn every_object_every_provider_syncs_has_a_default_mapping() {
    for kind in ProviderKind::ALL {
        for object in providers::objects(kind) {
            let mapping = object_mapping(kind, object, None);
            assert!(
                mapping.is_ok_and(|mapping| !mapping.fields.is_empty()),
                "{kind} {object}"
            );
        }
    }
}

#[test]
fn property_mappings_add_and_rename_fields_and_bad_ones_are_refused() {
    let custom = json!({"contacts": {"hs_lead_score": "lead_score", "phone": "mobile"}});
    let mapping = object_mapping(ProviderKind::HubSpot, "contacts", Some(&custom));
    let mapping = mapping.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(mapping.entity_type, "person");
    assert_eq!(
        mapping.fields.get("hs_lead_score").map(String::as_str),
        Some("lead_score")
    );
    assert_eq!(
        mapping.fields.get("phone").map(String::as_str),
        Some("mobile")
    );
    for bad in [
        json!({"contacts": ["x"]}),
        json!({"contacts": {"x": 1}}),
        json!({"contacts": {"x": "has space"}}),
    ] {
        assert!(
            object_mapping(ProviderKind::HubSpot, "contacts", Some(&bad)).is_err(),
            "{bad}"
        );
    }
    assert!(object_mapping(ProviderKind::HubSpot, "tickets", None).is_err());
}
