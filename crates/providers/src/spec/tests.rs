//! Provider specs hold the documented values and every URL can be moved to a mock.

use std::time::Duration;

use super::{ConnectionConfig, IntercomRegion, ProviderSpec};
use crate::{ProviderError, ProviderKind};

#[test]
fn only_intercom_and_stripe_have_tokens_that_never_expire() {
    for kind in ProviderKind::ALL {
        let spec = ProviderSpec::for_provider(kind);
        let never_expires = spec.default_token_lifetime.is_none();
        assert_eq!(
            never_expires,
            matches!(kind, ProviderKind::Intercom | ProviderKind::Stripe),
            "{kind}"
        );
    }
    assert_eq!(
        ProviderSpec::for_provider(ProviderKind::HubSpot).default_token_lifetime,
        Some(Duration::from_secs(1800))
    );
}

#[test]
fn pkce_and_google_offline_access_are_declared() {
    let pkce: Vec<_> = ProviderKind::ALL
        .into_iter()
        .filter(|kind| ProviderSpec::for_provider(*kind).pkce)
        .collect();
    assert_eq!(
        pkce,
        vec![
            ProviderKind::HubSpot,
            ProviderKind::Salesforce,
            ProviderKind::Zendesk,
            ProviderKind::Gmail
        ]
    );
    let gmail = ProviderSpec::for_provider(ProviderKind::Gmail);
    assert!(
        gmail
            .extra_authorize_params
            .contains(&("access_type".to_owned(), "offline".to_owned()))
    );
    assert!(
        gmail
            .extra_authorize_params
            .contains(&("prompt".to_owned(), "consent".to_owned()))
    );
}

#[test]
fn the_auth_base_url_moves_every_auth_endpoint_and_keeps_paths() -> Result<(), ProviderError> {
    let spec = ProviderSpec::for_provider(ProviderKind::HubSpot)
        .with_auth_base_url("http://127.0.0.1:4010/")?;
    assert_eq!(spec.authorize_url, "http://127.0.0.1:4010/oauth/authorize");
    assert_eq!(spec.token_url, "http://127.0.0.1:4010/oauth/v3/token");
    assert_eq!(
        spec.revoke_url.as_deref(),
        Some("http://127.0.0.1:4010/oauth/v1/refresh-tokens/{token}")
    );
    let zendesk = ProviderSpec::for_provider(ProviderKind::Zendesk)
        .with_auth_base_url("http://127.0.0.1:4011")?
        .with_api_base_url("http://127.0.0.1:4012")?
        .for_connection(&ConnectionConfig {
            zendesk_subdomain: Some("acme".to_owned()),
            ..ConnectionConfig::default()
        })?;
    assert_eq!(zendesk.token_url, "http://127.0.0.1:4011/oauth/tokens");
    assert_eq!(zendesk.api_base_url, "http://127.0.0.1:4012");
    assert!(
        ProviderSpec::for_provider(ProviderKind::Gmail)
            .with_api_base_url("ftp://example.com")
            .is_err()
    );
    assert!(
        ProviderSpec::for_provider(ProviderKind::Gmail)
            .with_auth_base_url("not a url")
            .is_err()
    );
    Ok(())
}

#[test]
fn zendesk_needs_a_plain_subdomain() -> Result<(), ProviderError> {
    let spec = ProviderSpec::for_provider(ProviderKind::Zendesk);
    let acme = spec.clone().for_connection(&ConnectionConfig {
        zendesk_subdomain: Some("acme-support".to_owned()),
        ..ConnectionConfig::default()
    })?;
    assert_eq!(
        acme.authorize_url,
        "https://acme-support.zendesk.com/oauth/authorizations/new"
    );
    assert_eq!(acme.api_base_url, "https://acme-support.zendesk.com");
    for bad in [None, Some(""), Some("evil.com/x"), Some("a.b"), Some("-x")] {
        let config = ConnectionConfig {
            zendesk_subdomain: bad.map(str::to_owned),
            ..ConnectionConfig::default()
        };
        assert!(
            matches!(
                spec.clone().for_connection(&config),
                Err(ProviderError::Misconfigured { .. })
            ),
            "{bad:?}"
        );
    }
    Ok(())
}

#[test]
fn salesforce_sandboxes_and_intercom_regions_change_hosts() -> Result<(), ProviderError> {
    let sandbox =
        ProviderSpec::for_provider(ProviderKind::Salesforce).for_connection(&ConnectionConfig {
            salesforce_sandbox: true,
            ..ConnectionConfig::default()
        })?;
    assert_eq!(
        sandbox.token_url,
        "https://test.salesforce.com/services/oauth2/token"
    );
    let eu =
        ProviderSpec::for_provider(ProviderKind::Intercom).for_connection(&ConnectionConfig {
            intercom_region: IntercomRegion::from_name("EU"),
            ..ConnectionConfig::default()
        })?;
    assert_eq!(eu.api_base_url, "https://api.eu.intercom.io");
    Ok(())
}
