//! Names of the providers round-trip and match the catalog.

use super::ProviderKind;

#[test]
fn every_slug_and_provider_key_names_its_provider() {
    for kind in ProviderKind::ALL {
        assert_eq!(ProviderKind::from_slug(kind.slug()), Some(kind));
        assert_eq!(ProviderKind::from_slug(kind.provider_key()), Some(kind));
    }
    assert_eq!(ProviderKind::Gmail.provider_key(), "google-mail");
    assert_eq!(ProviderKind::from_slug("pipedrive"), None);
}
