//! OAuth against local mocks answering in each provider's documented token shapes.

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{OAuthClient, OAuthCredentials, Revocation, TokenSet};
use crate::test_support::{FixedClock, RecordingSleeper, fixed_now};
use crate::{
    ConnectionConfig, HttpCore, Keyring, ProviderError, ProviderKind, ProviderSpec, RetryPolicy,
};

fn client_for(kind: ProviderKind, base_url: &str) -> Result<OAuthClient, ProviderError> {
    let config = ConnectionConfig {
        zendesk_subdomain: Some("acme".to_owned()),
        ..ConnectionConfig::default()
    };
    let spec = ProviderSpec::for_provider(kind)
        .with_auth_base_url(base_url)?
        .for_connection(&config)?;
    let http = HttpCore::new(
        kind,
        RetryPolicy::default(),
        Arc::new(FixedClock(fixed_now())),
        Arc::new(RecordingSleeper::default()),
    )?;
    let credentials = OAuthCredentials {
        client_id: format!("{}-client-id", kind.slug()),
        client_secret: SecretString::from(format!("{}-client-secret", kind.slug())),
        redirect_uri: "https://platform.example.com/oauth/callback".to_owned(),
    };
    OAuthClient::new(spec, credentials, http)
}

fn token_body(kind: ProviderKind, file: &str) -> String {
    let path = format!(
        "{}/test_data/{}/oauth/{file}",
        env!("CARGO_MANIFEST_DIR"),
        kind.slug()
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn token_path(kind: ProviderKind) -> String {
    let spec = ProviderSpec::for_provider(kind)
        .with_auth_base_url("http://mock")
        .unwrap_or_else(|error| panic!("{error}"));
    spec.token_url
        .trim_start_matches("http://mock")
        .replace("{subdomain}", "acme")
}

#[test]
fn authorization_urls_carry_state_scopes_pkce_and_provider_parameters() -> Result<(), ProviderError>
{
    for kind in ProviderKind::ALL {
        let client = client_for(kind, "https://auth.example.com")?;
        let request = client.authorization_request()?;
        let url = url::Url::parse(&request.url).unwrap_or_else(|error| panic!("{error}"));
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let spec = ProviderSpec::for_provider(kind);
        assert_eq!(
            query.get("client_id").map(String::as_str),
            Some(format!("{}-client-id", kind.slug()).as_str())
        );
        assert_eq!(
            query.get("redirect_uri").map(String::as_str),
            Some("https://platform.example.com/oauth/callback")
        );
        assert_eq!(query.get("response_type").map(String::as_str), Some("code"));
        assert_eq!(
            query.get("state").map(String::as_str),
            Some(request.state.expose_secret()),
            "{kind}"
        );
        assert!(
            request.state.expose_secret().len() >= 16,
            "{kind}: state too short to be unguessable"
        );
        assert_eq!(
            query.get("scope").cloned(),
            (!spec.scopes.is_empty()).then(|| spec.scopes.join(" ")),
            "{kind}"
        );
        assert_eq!(
            query.get("code_challenge_method").map(String::as_str),
            spec.pkce.then_some("S256"),
            "{kind}"
        );
        assert_eq!(query.contains_key("code_challenge"), spec.pkce, "{kind}");
        assert_eq!(request.pkce_verifier.is_some(), spec.pkce, "{kind}");
        assert!(
            !request.url.contains("client-secret"),
            "{kind}: the secret is in the URL"
        );
    }
    let gmail =
        client_for(ProviderKind::Gmail, "https://auth.example.com")?.authorization_request()?;
    assert!(gmail.url.contains("access_type=offline") && gmail.url.contains("prompt=consent"));
    let first =
        client_for(ProviderKind::HubSpot, "https://auth.example.com")?.authorization_request()?;
    let second =
        client_for(ProviderKind::HubSpot, "https://auth.example.com")?.authorization_request()?;
    assert_ne!(first.state.expose_secret(), second.state.expose_secret());
    Ok(())
}

#[tokio::test]
async fn every_provider_exchanges_a_code_and_gets_a_finite_lifetime_unless_documented_otherwise()
-> Result<(), ProviderError> {
    let expected_lifetime = [
        (ProviderKind::HubSpot, Some(1800)),
        (ProviderKind::Salesforce, Some(7200)),
        (ProviderKind::Stripe, None),
        (ProviderKind::Zendesk, Some(172_800)),
        (ProviderKind::Intercom, None),
        (ProviderKind::Gmail, Some(3599)),
    ];
    for (kind, lifetime) in expected_lifetime {
        let server = MockServer::start().await;
        let mut mock = Mock::given(method("POST"))
            .and(path(token_path(kind)))
            .and(body_string_contains("grant_type=authorization_code"))
            .and(body_string_contains("code=the-code"))
            .and(body_string_contains(format!(
                "client_secret={}-client-secret",
                kind.slug()
            )));
        if ProviderSpec::for_provider(kind).pkce {
            mock = mock.and(body_string_contains("code_verifier=the-verifier"));
        }
        mock.respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(token_body(kind, "token.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
        let client = client_for(kind, &server.uri())?;
        let verifier = SecretString::from("the-verifier");
        let pkce = ProviderSpec::for_provider(kind).pkce.then_some(&verifier);
        let tokens = client.exchange_code("the-code", pkce).await?;
        let expected = lifetime.map(|seconds| fixed_now() + chrono::Duration::seconds(seconds));
        assert_eq!(tokens.expires_at, expected, "{kind}");
        assert!(!tokens.access_token.expose_secret().is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn salesforce_keeps_instance_url_and_identity_but_never_the_signature()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            token_body(ProviderKind::Salesforce, "token.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let tokens = client_for(ProviderKind::Salesforce, &server.uri())?
        .exchange_code("the-code", None)
        .await?;
    assert_eq!(
        tokens
            .metadata
            .get("instance_url")
            .and_then(|value| value.as_str()),
        Some("https://acme.my.salesforce.com")
    );
    assert!(tokens.metadata.contains_key("id"));
    assert!(!tokens.metadata.contains_key("signature"));
    assert_eq!(
        tokens.scopes,
        vec!["refresh_token".to_owned(), "api".to_owned()]
    );
    let debug = format!("{tokens:?}");
    assert!(
        !debug.contains("00Dxx0000001gPL!") && !debug.contains("5Aep8614"),
        "{debug}"
    );
    Ok(())
}

#[tokio::test]
async fn a_rotating_refresh_token_replaces_the_old_one_and_a_missing_expiry_gets_the_default()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/tokens"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=zd-refresh-1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            token_body(ProviderKind::Zendesk, "token_refreshed.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(ProviderKind::Zendesk, &server.uri())?;
    let current = TokenSet {
        access_token: SecretString::from("zd-access-1"),
        refresh_token: Some(SecretString::from("zd-refresh-1")),
        expires_at: Some(fixed_now()),
        scopes: vec!["read".to_owned()],
        metadata: serde_json::Map::new(),
    };
    let refreshed = client.refresh(&current).await?;
    assert_eq!(refreshed.access_token.expose_secret(), "zd-access-2");
    assert_eq!(
        refreshed
            .refresh_token
            .as_ref()
            .map(|token| token.expose_secret().to_owned()),
        Some("zd-refresh-2".to_owned())
    );
    assert_eq!(
        refreshed.expires_at,
        Some(fixed_now() + chrono::Duration::minutes(30)),
        "never 'never expires'"
    );
    Ok(())
}

#[tokio::test]
async fn google_keeps_the_refresh_token_it_does_not_resend() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            token_body(ProviderKind::Gmail, "token_refreshed.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let current = TokenSet {
        access_token: SecretString::from("ya29.old"),
        refresh_token: Some(SecretString::from("1//0gLd-google-refresh")),
        expires_at: Some(fixed_now()),
        scopes: Vec::new(),
        metadata: serde_json::Map::new(),
    };
    let refreshed = client_for(ProviderKind::Gmail, &server.uri())?
        .refresh(&current)
        .await?;
    assert_eq!(
        refreshed.access_token.expose_secret(),
        "ya29.a0AfB_byC-second"
    );
    assert_eq!(
        refreshed
            .refresh_token
            .as_ref()
            .map(|token| token.expose_secret().to_owned()),
        Some("1//0gLd-google-refresh".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn a_revoked_grant_means_reauthorize_after_exactly_one_call() -> Result<(), ProviderError> {
    for (kind, file) in [
        (ProviderKind::HubSpot, "invalid_grant.json"),
        (ProviderKind::Gmail, "invalid_grant.json"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(token_path(kind)))
            .respond_with(
                ResponseTemplate::new(400).set_body_raw(token_body(kind, file), "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let current = TokenSet {
            access_token: SecretString::from("old"),
            refresh_token: Some(SecretString::from("revoked-refresh")),
            expires_at: Some(fixed_now()),
            scopes: Vec::new(),
            metadata: serde_json::Map::new(),
        };
        let error = client_for(kind, &server.uri())?
            .refresh(&current)
            .await
            .expect_err("revoked");
        assert!(
            matches!(&error, ProviderError::Reauthorize { reason, .. } if reason.starts_with("invalid_grant")),
            "{kind}: {error}"
        );
        assert!(!error.to_string().contains("revoked-refresh"));
    }
    Ok(())
}

#[tokio::test]
async fn a_bad_client_secret_is_misconfiguration_and_a_5xx_is_retried() -> Result<(), ProviderError>
{
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains("code=bad-client"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            token_body(ProviderKind::Salesforce, "invalid_client.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains("code=flaky"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains("code=flaky"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            token_body(ProviderKind::Salesforce, "token.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let client = client_for(ProviderKind::Salesforce, &server.uri())?;
    let error = client
        .exchange_code("bad-client", None)
        .await
        .expect_err("invalid client");
    assert!(
        matches!(error, ProviderError::Misconfigured { .. }),
        "{error}"
    );
    assert!(client.exchange_code("flaky", None).await.is_ok());
    let garbage = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .mount(&garbage)
        .await;
    let error = client_for(ProviderKind::Salesforce, &garbage.uri())?
        .exchange_code("x", None)
        .await
        .expect_err("html");
    assert!(matches!(error, ProviderError::Decode { .. }), "{error}");
    Ok(())
}

#[tokio::test]
async fn revocation_uses_each_providers_endpoint() -> Result<(), ProviderError> {
    let tokens = TokenSet {
        access_token: SecretString::from("access"),
        refresh_token: Some(SecretString::from("refresh/with+chars")),
        expires_at: None,
        scopes: Vec::new(),
        metadata: serde_json::json!({"stripe_user_id": "acct_1Abc2Def3Ghi"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(body_string_contains("token=refresh%2Fwith%2Bchars"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/oauth/v1/refresh-tokens/refresh%2Fwith%2Bchars"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/deauthorize"))
        .and(body_string_contains("stripe_user_id=acct_1Abc2Def3Ghi"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"stripe_user_id":"acct_1Abc2Def3Ghi"}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/revoke"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_token"))
        .expect(1)
        .mount(&server)
        .await;
    for kind in [
        ProviderKind::Gmail,
        ProviderKind::HubSpot,
        ProviderKind::Stripe,
        ProviderKind::Salesforce,
    ] {
        assert_eq!(
            client_for(kind, &server.uri())?.revoke(&tokens).await?,
            Revocation::Revoked,
            "{kind}"
        );
    }
    assert_eq!(
        client_for(ProviderKind::Intercom, &server.uri())?
            .revoke(&tokens)
            .await?,
        Revocation::NotSupported
    );
    Ok(())
}

#[test]
fn sealed_tokens_open_only_for_their_connection() -> Result<(), crate::SealingError> {
    let keyring = Keyring::parse(&SecretString::from(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ))?;
    let tokens = TokenSet {
        access_token: SecretString::from("ya29.secret"),
        refresh_token: Some(SecretString::from("1//refresh")),
        expires_at: Some(fixed_now()),
        scopes: vec!["a".to_owned()],
        metadata: serde_json::Map::new(),
    };
    let sealed = tokens.seal(&keyring, b"workspace:1/connection:1")?;
    let opened = TokenSet::open(&keyring, &sealed, b"workspace:1/connection:1")?;
    assert_eq!(opened.access_token.expose_secret(), "ya29.secret");
    assert_eq!(opened.expires_at, tokens.expires_at);
    assert!(TokenSet::open(&keyring, &sealed, b"workspace:2/connection:1").is_err());
    Ok(())
}
