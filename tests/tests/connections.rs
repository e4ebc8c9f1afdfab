//! The connection lifecycle against a mocked provider: start, callback, API keys, disconnect, and
//! every bad input as a typed error that changes nothing.

use std::sync::Arc;

use integrations::{ConnectionManager, EngineError, OAuthCallback, StartConnection};
use providers::secrecy::SecretString;
use providers::{
    ConnectionConfig, HttpCore, Keyring, OAuthClient, OAuthCredentials, ProviderKind, ProviderSpec,
    RetryPolicy,
};
use serde_json::json;
use tests::fixtures::{new_id, v};
use tests::{Backend, ManualClock, NoWait, TestDb};
use wiremock::matchers::{body_string_contains, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct World {
    test_db: TestDb,
    clock: Arc<ManualClock>,
    manager: ConnectionManager,
    workspace_id: uuid::Uuid,
    user_id: uuid::Uuid,
    server: MockServer,
}

impl World {
    async fn new(backend: Backend) -> anyhow::Result<Self> {
        let test_db = TestDb::migrated(backend).await?;
        let (workspace_id, user_id) = (new_id(), new_id());
        test_db
            .execute(
                "INSERT INTO workspaces (id, name) VALUES ($1, 'Acme')",
                vec![v(workspace_id)],
            )
            .await?;
        test_db
            .execute(
                "INSERT INTO users (id, email) VALUES ($1, 'ada@example.com')",
                vec![v(user_id)],
            )
            .await?;
        let clock = ManualClock::new();
        let keyring = Arc::new(Keyring::parse(&SecretString::from(
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ))?);
        let manager = ConnectionManager::new(test_db.db.clone(), clock.clone(), keyring);
        let server = MockServer::start().await;
        Ok(Self {
            test_db,
            clock,
            manager,
            workspace_id,
            user_id,
            server,
        })
    }

    fn oauth(
        &self,
        kind: ProviderKind,
        config: &ConnectionConfig,
    ) -> Result<OAuthClient, EngineError> {
        let spec = ProviderSpec::for_provider(kind)
            .with_auth_base_url(&self.server.uri())?
            .for_connection(config)?;
        let http = HttpCore::new(
            kind,
            RetryPolicy::default(),
            self.clock.clone(),
            Arc::new(NoWait),
        )?;
        Ok(OAuthClient::new(
            spec,
            OAuthCredentials {
                client_id: "client".to_owned(),
                client_secret: SecretString::from("secret"),
                redirect_uri: "https://platform.example.com/oauth/callback".to_owned(),
            },
            http,
        )?)
    }

    async fn start(&self, slug: &str) -> Result<(integrations::Started, String), EngineError> {
        let kind =
            ProviderKind::from_slug(slug).ok_or_else(|| EngineError::NotFound(slug.to_owned()));
        let config = ConnectionConfig::default();
        let oauth = self.oauth(kind.unwrap_or(ProviderKind::HubSpot), &config)?;
        let started = self
            .manager
            .start(
                StartConnection {
                    workspace_id: self.workspace_id,
                    user_id: self.user_id,
                    integration_slug: slug.to_owned(),
                    config,
                },
                &oauth,
            )
            .await?;
        let url = url::Url::parse(&started.authorization_url)
            .map_err(|error| EngineError::InvalidInput(error.to_string()))?;
        let state = url
            .query_pairs()
            .find(|(key, _)| key == "state")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        Ok((started, state))
    }

    async fn complete(
        &self,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
        user_id: uuid::Uuid,
    ) -> Result<uuid::Uuid, EngineError> {
        let oauth_for = |kind: ProviderKind, config: &ConnectionConfig| self.oauth(kind, config);
        self.manager
            .complete(
                OAuthCallback {
                    state: state.to_owned(),
                    code: code.map(str::to_owned),
                    error: error.map(str::to_owned),
                    user_id,
                },
                &oauth_for,
            )
            .await
    }

    async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        self.test_db.count(sql, vec![]).await
    }
}

async fn mount_hubspot_token(server: &MockServer) {
    Mock::given(method("POST")).and(path("/oauth/v3/token")).and(body_string_contains("code=good-code")).and(body_string_contains("code_verifier="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer", "access_token": "hubspot-access-plaintext", "refresh_token": "hubspot-refresh-plaintext", "expires_in": 1800, "hub_id": 62515
        })))
        .mount(server).await;
}

#[tokio::test]
async fn an_oauth_connection_starts_completes_and_queues_validation_and_the_first_sync()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let world = World::new(backend).await?;
        mount_hubspot_token(&world.server).await;
        let (started, state) = world.start("hubspot").await?;
        assert!(
            started
                .authorization_url
                .contains("code_challenge_method=S256")
        );
        assert_eq!(world.count("SELECT count(*) FROM integration_connections WHERE status = 'PENDING_AUTHORIZATION'").await?, 1);
        assert_eq!(world.count("SELECT count(*) FROM oauth_states WHERE consumed_at IS NULL AND sealed_pkce_verifier IS NOT NULL").await?, 1);
        let raw_state = world
            .test_db
            .count(
                &format!("SELECT count(*) FROM oauth_states WHERE state_hash = '{state}'"),
                vec![],
            )
            .await?;
        assert_eq!(raw_state, 0, "{backend:?}: the raw state is never stored");

        let connection_id = world
            .complete(&state, Some("good-code"), None, world.user_id)
            .await?;
        assert_eq!(connection_id, started.connection_id);
        assert_eq!(world.count("SELECT count(*) FROM integration_connections WHERE status = 'ACTIVE' AND connection_status = 'connected'").await?, 1);
        assert_eq!(
            world
                .count(
                    "SELECT count(*) FROM integration_credentials WHERE credential_type = 'OAUTH2'"
                )
                .await?,
            1
        );
        assert_eq!(
            world
                .count("SELECT count(*) FROM job_queue WHERE kind = 'validate'")
                .await?,
            1
        );
        assert_eq!(
            world
                .count("SELECT count(*) FROM job_queue WHERE kind = 'sync'")
                .await?,
            3,
            "{backend:?}: contacts, companies, deals"
        );
        let metadata = world.count("SELECT count(*) FROM integration_connections WHERE CAST(connection_metadata ->> 'hub_id' AS TEXT) = '62515'").await?;
        assert_eq!(metadata, 1, "{backend:?}: provider facts recorded");

        // The state is single-use.
        let again = world
            .complete(&state, Some("good-code"), None, world.user_id)
            .await;
        assert!(
            matches!(again, Err(EngineError::Conflict(_))),
            "{backend:?}: {again:?}"
        );
        // One connection per workspace and integration.
        let second = world.start("hubspot").await;
        assert!(
            matches!(second, Err(EngineError::Conflict(_))),
            "{backend:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn expired_foreign_refused_or_unknown_states_are_typed_errors_that_change_nothing()
-> anyhow::Result<()> {
    let world = World::new(Backend::Postgres).await?;
    mount_hubspot_token(&world.server).await;
    let (_, state) = world.start("hubspot").await?;
    let someone_else = world
        .complete(&state, Some("good-code"), None, new_id())
        .await;
    assert!(
        matches!(someone_else, Err(EngineError::Forbidden(_))),
        "{someone_else:?}"
    );
    let unknown = world
        .complete("not-a-state", Some("good-code"), None, world.user_id)
        .await;
    assert!(
        matches!(unknown, Err(EngineError::InvalidInput(_))),
        "{unknown:?}"
    );
    let denied = world
        .complete(&state, None, Some("access_denied"), world.user_id)
        .await;
    assert!(
        matches!(&denied, Err(EngineError::Provider(error)) if error.to_string().contains("access_denied")),
        "{denied:?}"
    );

    let (_, fresh_state) = world.start("hubspot").await?;
    world.clock.advance(chrono::Duration::minutes(11));
    let expired = world
        .complete(&fresh_state, Some("good-code"), None, world.user_id)
        .await;
    assert!(
        matches!(expired, Err(EngineError::Conflict(_))),
        "{expired:?}"
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_connections WHERE status = 'ACTIVE'")
            .await?,
        0
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_credentials")
            .await?,
        0
    );
    let missing = world.start("pipedrive").await;
    assert!(
        matches!(missing, Err(EngineError::NotFound(_))),
        "{missing:?}"
    );
    Ok(())
}

#[tokio::test]
async fn stripe_connects_with_a_restricted_key_and_other_keys_or_providers_are_refused()
-> anyhow::Result<()> {
    let world = World::new(Backend::Sqlite).await?;
    let refused = world
        .manager
        .connect_with_api_key(
            world.workspace_id,
            world.user_id,
            "stripe",
            &SecretString::from("pk_live_51Nv0FGQ9RKHgCVdKabcdef"),
        )
        .await;
    assert!(
        matches!(refused, Err(EngineError::InvalidInput(_))),
        "{refused:?}"
    );
    let not_stripe = world
        .manager
        .connect_with_api_key(
            world.workspace_id,
            world.user_id,
            "hubspot",
            &SecretString::from("rk_live_51Nv0FGQ9RKHgCVdKabcdef"),
        )
        .await;
    assert!(
        matches!(not_stripe, Err(EngineError::InvalidInput(_))),
        "{not_stripe:?}"
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_connections")
            .await?,
        0
    );
    world
        .manager
        .connect_with_api_key(
            world.workspace_id,
            world.user_id,
            "stripe",
            &SecretString::from("rk_live_51Nv0FGQ9RKHgCVdKabcdef"),
        )
        .await?;
    assert_eq!(world.count("SELECT count(*) FROM integration_connections WHERE status = 'ACTIVE' AND connection_metadata ->> 'key_kind' = 'restricted'").await?, 1);
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_credentials WHERE credential_type = 'API_KEY'")
            .await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn disconnect_revokes_deletes_credentials_and_stops_syncs() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let world = World::new(backend).await?;
        mount_hubspot_token(&world.server).await;
        Mock::given(method("DELETE"))
            .and(path_regex(
                "^/oauth/v1/refresh-tokens/hubspot-refresh-plaintext$",
            ))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&world.server)
            .await;
        let (_, state) = world.start("hubspot").await?;
        let connection_id = world
            .complete(&state, Some("good-code"), None, world.user_id)
            .await?;
        // A sync that ran before: its state has a cursor.
        let engine =
            integrations::SyncEngine::new(world.test_db.db.clone(), world.clock.clone(), "w");
        drop(engine.claim(connection_id, "contacts").await?);
        world
            .test_db
            .execute(
                "UPDATE integration_sync_states SET sync_cursor = '{\"after\":\"9\"}', sync_status = 'idle'",
                vec![],
            )
            .await?;
        let oauth = world.oauth(ProviderKind::HubSpot, &ConnectionConfig::default())?;
        let outcome = world
            .manager
            .disconnect(
                world.workspace_id,
                connection_id,
                world.user_id,
                Some(&oauth),
                None,
            )
            .await?;
        assert_eq!(
            outcome.revocation,
            Some(Ok(providers::Revocation::Revoked)),
            "{backend:?}"
        );
        assert_eq!(world.count("SELECT count(*) FROM integration_sync_states WHERE sync_status = 'disabled' AND lease_owner IS NULL").await?, 1);
        assert!(
            matches!(
                engine.lease_expiry(connection_id, "contacts").await,
                Err(EngineError::Conflict(_))
            ),
            "{backend:?}: a disabled sync is not waited for"
        );
        world.server.verify().await;
        assert_eq!(
            world
                .count("SELECT count(*) FROM integration_credentials")
                .await?,
            0
        );
        assert_eq!(world.count("SELECT count(*) FROM integration_connections WHERE status = 'DISCONNECTED' AND connection_status = 'disconnected' AND sync_status = 'disabled' AND health_status = 'UNKNOWN' AND NOT is_active").await?, 1,
            "{backend:?}: nothing checks a disconnected connection, so its health is unknown");
        assert_eq!(
            world
                .count("SELECT count(*) FROM job_queue WHERE status = 'cancelled'")
                .await?,
            4,
            "{backend:?}: queued validation and syncs cancelled"
        );
        // Reconnecting later is allowed, and its syncs read everything again from the start.
        let (_, state) = world.start("hubspot").await?;
        let again = world
            .complete(&state, Some("good-code"), None, world.user_id)
            .await?;
        assert_eq!(again, connection_id, "{backend:?}: the same connection row");
        assert_eq!(world.count("SELECT count(*) FROM integration_sync_states WHERE sync_status = 'idle' AND sync_cursor IS NULL").await?, 1, "{backend:?}");
        let claim = engine
            .claim(connection_id, "contacts")
            .await?
            .ok_or_else(|| anyhow::anyhow!("{backend:?}: the reconnected sync is claimable"))?;
        assert_eq!(claim.cursor, None);
    }
    Ok(())
}

#[tokio::test]
async fn mappings_webhook_secrets_and_disconnects_are_checked_against_the_workspace()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let world = World::new(backend).await?;
        let connection_id = world
            .manager
            .connect_with_api_key(
                world.workspace_id,
                world.user_id,
                "stripe",
                &SecretString::from("rk_test_51Nv0FGQ9RKHgCVdKabcdef"),
            )
            .await?;
        let other_workspace = new_id();

        let good = json!({"customers": {"metadata": "stripe_metadata"}});
        let bad_object = json!({"tickets": {"subject": "subject"}});
        let bad_key = json!({"customers": {"email": "e-mail"}});
        for (mappings, why) in [(bad_object, "object"), (bad_key, "key")] {
            let refused = world
                .manager
                .update_property_mappings(
                    world.workspace_id,
                    connection_id,
                    world.user_id,
                    mappings,
                    None,
                )
                .await;
            assert!(
                matches!(refused, Err(EngineError::InvalidInput(_))),
                "{backend:?} {why}: {refused:?}"
            );
        }
        let foreign = world
            .manager
            .update_property_mappings(
                other_workspace,
                connection_id,
                world.user_id,
                good.clone(),
                None,
            )
            .await;
        assert!(
            matches!(foreign, Err(EngineError::NotFound(_))),
            "{backend:?}"
        );
        assert_eq!(world.count("SELECT count(*) FROM integration_connections WHERE property_mappings IS NOT NULL").await?, 0);
        world
            .manager
            .update_property_mappings(world.workspace_id, connection_id, world.user_id, good, None)
            .await?;
        assert_eq!(world.count("SELECT count(*) FROM integration_connections WHERE property_mappings IS NOT NULL").await?, 1);

        let keyring = Arc::new(Keyring::parse(&SecretString::from(
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ))?);
        let store = integrations::CredentialStore::new(
            world.test_db.db.clone(),
            world.clock.clone(),
            keyring,
        );
        store
            .set_webhook_secret(
                connection_id,
                &SecretString::from("whsec_plaintext_signing_secret"),
            )
            .await?;
        let secret = store.webhook_secret(connection_id).await?.map(|secret| {
            use providers::secrecy::ExposeSecret as _;
            secret.expose_secret().to_owned()
        });
        assert_eq!(secret.as_deref(), Some("whsec_plaintext_signing_secret"));

        let foreign = world
            .manager
            .disconnect(other_workspace, connection_id, world.user_id, None, None)
            .await;
        assert!(
            matches!(foreign, Err(EngineError::NotFound(_))),
            "{backend:?}"
        );
        assert_eq!(
            world
                .count("SELECT count(*) FROM integration_connections WHERE status = 'ACTIVE'")
                .await?,
            1
        );
    }
    Ok(())
}
