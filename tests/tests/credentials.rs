//! Credentials on a fresh database: stored only sealed and bound to their row, refreshed once for
//! fifty concurrent callers, and a revoked grant disconnects after exactly one provider call.

use std::sync::Arc;

use integrations::{CredentialKind, CredentialStore, EngineError};
use providers::secrecy::{ExposeSecret as _, SecretString};
use providers::{
    HttpCore, Keyring, OAuthClient, OAuthCredentials, ProviderError, ProviderKind, ProviderSpec,
    RetryPolicy, TokenSet,
};
use sea_orm::ConnectionTrait as _;
use serde_json::json;
use tests::fixtures::{Tenant, v};
use tests::{Backend, ManualClock, NoWait, TestDb};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn keyring() -> anyhow::Result<Arc<Keyring>> {
    Ok(Arc::new(Keyring::parse(&SecretString::from(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ))?))
}

fn expiring_tokens(clock: &ManualClock) -> TokenSet {
    use providers::Clock as _;
    TokenSet {
        access_token: SecretString::from("old-access-token-plaintext"),
        refresh_token: Some(SecretString::from("refresh-token-plaintext")),
        expires_at: Some(clock.now() + chrono::Duration::minutes(1)),
        scopes: vec!["oauth".to_owned()],
        metadata: serde_json::Map::new(),
    }
}

fn oauth(server: &MockServer, clock: Arc<ManualClock>) -> anyhow::Result<OAuthClient> {
    let spec =
        ProviderSpec::for_provider(ProviderKind::HubSpot).with_auth_base_url(&server.uri())?;
    let http = HttpCore::new(
        ProviderKind::HubSpot,
        RetryPolicy::default(),
        clock,
        Arc::new(NoWait),
    )?;
    Ok(OAuthClient::new(
        spec,
        OAuthCredentials {
            client_id: "id".to_owned(),
            client_secret: SecretString::from("secret"),
            redirect_uri: "https://platform.example.com/oauth/callback".to_owned(),
        },
        http,
    )?)
}

#[tokio::test]
async fn fifty_concurrent_requests_on_an_expiring_token_make_exactly_one_refresh()
-> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    let clock = ManualClock::new();
    let store = CredentialStore::new(test_db.db.clone(), clock.clone(), keyring()?);
    store
        .store(
            tenant.connection_id,
            CredentialKind::OAuth2,
            &expiring_tokens(&clock),
        )
        .await?;

    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/oauth/v3/token")).and(body_string_contains("refresh_token=refresh-token-plaintext"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer", "access_token": "new-access-token", "refresh_token": "refresh-token-plaintext", "expires_in": 1800
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = Arc::new(oauth(&server, clock.clone())?);
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (store, client) = (store.clone(), client.clone());
        let connection_id = tenant.connection_id;
        callers.spawn(async move { store.access_token(connection_id, client.as_ref()).await });
    }
    while let Some(token) = callers.join_next().await {
        assert_eq!(token??.expose_secret(), "new-access-token");
    }
    server.verify().await;
    assert_eq!(
        test_db
            .count(
                "SELECT count(*) FROM integration_credentials WHERE version = 1",
                vec![]
            )
            .await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_revoked_grant_disconnects_after_one_call_and_later_requests_do_not_call_the_provider()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await?;
        let clock = ManualClock::new();
        let store = CredentialStore::new(test_db.db.clone(), clock.clone(), keyring()?);
        store
            .store(
                tenant.connection_id,
                CredentialKind::OAuth2,
                &expiring_tokens(&clock),
            )
            .await?;
        let server = MockServer::start().await;
        Mock::given(method("POST")).and(path("/oauth/v3/token"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant", "error_description": "refresh token is invalid, expired or revoked"})))
            .expect(1)
            .mount(&server)
            .await;
        let client = oauth(&server, clock.clone())?;
        for _ in 0..3 {
            let outcome = store.access_token(tenant.connection_id, &client).await;
            assert!(
                matches!(
                    outcome,
                    Err(EngineError::Provider(ProviderError::Reauthorize { .. }))
                ),
                "{backend:?}: {outcome:?}"
            );
        }
        server.verify().await;
        let disconnected = test_db.count(
            "SELECT count(*) FROM integration_connections WHERE connection_status = 'disconnected' AND health_status = 'ERROR'
             AND status = 'DISCONNECTED' AND sync_status = 'disabled' AND validation_error LIKE '%invalid_grant%'", vec![]).await?;
        assert_eq!(disconnected, 1, "{backend:?}");
    }
    Ok(())
}

#[tokio::test]
async fn tokens_are_never_stored_in_plaintext_and_a_moved_ciphertext_does_not_open()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let first = Tenant::create(&test_db, "OWNER", "hubspot").await?;
        let second = Tenant::create(&test_db, "OWNER", "hubspot").await?;
        let clock = ManualClock::new();
        let store = CredentialStore::new(test_db.db.clone(), clock.clone(), keyring()?);
        store
            .store(
                first.connection_id,
                CredentialKind::OAuth2,
                &expiring_tokens(&clock),
            )
            .await?;
        let rows = test_db
            .db
            .query_all_raw(
                test_db.statement("SELECT sealed_secret FROM integration_credentials", vec![]),
            )
            .await?;
        for row in rows {
            let bytes: Vec<u8> = row.try_get_by_index(0)?;
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("plaintext") && !text.contains("access-token"),
                "{backend:?}: a token is readable"
            );
        }
        // Copy the sealed row onto the other connection: it must not open there.
        test_db.execute(
            "INSERT INTO integration_credentials (connection_id, credential_type, key_id, sealed_secret, version)
             SELECT $1, credential_type, key_id, sealed_secret, 0 FROM integration_credentials WHERE connection_id = $2",
            vec![v(second.connection_id), v(first.connection_id)],
        ).await?;
        assert!(store.load(first.connection_id).await.is_ok());
        assert!(
            matches!(
                store.load(second.connection_id).await,
                Err(EngineError::Unexpected(_))
            ),
            "{backend:?}"
        );
    }
    Ok(())
}
