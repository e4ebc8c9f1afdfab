//! Bearer tokens from real identity providers: HS256 with a shared secret (Supabase's project
//! secret), RS256 and ES256 with keys from a JWKS URL (Auth0, Clerk, Cognito, Supabase's
//! asymmetric keys), audience and issuer, `nbf`, `exp` with a bounded leeway, a non-nil UUID
//! subject, and a key set that is refetched for an unknown `kid` at most once per interval and
//! kept when a later fetch fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use providers::secrecy::SecretString;
use serde_json::{Value, json};
use server::graphql::auth::{AuthError, AuthSettings, Verifier};
use tests::fixtures::new_id;
use tests::{Backend, TestDb, workspace_root};
use tokio::sync::Mutex;
use tower::ServiceExt as _;

/// A Supabase project's JWT secret, as `AUTH_JWT_SECRET`.
const SUPABASE_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
const SUPABASE_ISSUER: &str = "https://abcdefghijklmnop.supabase.co/auth/v1";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn key_file(name: &str) -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(
        workspace_root().join("tests/data/jwt").join(name),
    )?)
}

fn hs256(claims: &Value, secret: &str) -> anyhow::Result<String> {
    Ok(encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

fn signed(alg: Algorithm, kid: Option<&str>, claims: &Value) -> anyhow::Result<String> {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_der(&key_file("rsa-private.der")?),
        Algorithm::ES256 => EncodingKey::from_ec_der(&key_file("ec-private.der")?),
        other => anyhow::bail!("no test key for {other:?}"),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    Ok(encode(&header, claims, &key)?)
}

/// An access token as Supabase's auth server issues it.
fn supabase_claims(user_id: uuid::Uuid) -> Value {
    json!({
        "aud": "authenticated",
        "exp": now() + 3600,
        "iat": now(),
        "iss": SUPABASE_ISSUER,
        "sub": user_id.to_string(),
        "email": "ada@example.com",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now()}],
        "session_id": new_id().to_string(),
        "is_anonymous": false
    })
}

fn supabase_settings() -> AuthSettings {
    AuthSettings {
        hs256_secret: Some(SecretString::from(SUPABASE_SECRET)),
        audience: vec!["authenticated".to_owned()],
        issuer: Some(SUPABASE_ISSUER.to_owned()),
        ..AuthSettings::default()
    }
}

#[tokio::test]
async fn a_supabase_access_token_works_unchanged_and_bad_claims_are_refused() -> anyhow::Result<()>
{
    let verifier = Verifier::new(supabase_settings()).await?;
    let user_id = new_id();
    let claims = supabase_claims(user_id);
    let verified = verifier.verify(&hs256(&claims, SUPABASE_SECRET)?).await;
    assert_eq!(verified, Ok((user_id, Some("ada@example.com".to_owned()))));

    let with = |changes: Value| {
        let mut claims = claims.clone();
        if let (Value::Object(claims), Value::Object(changes)) = (&mut claims, changes) {
            for (key, value) in changes {
                if value.is_null() {
                    claims.remove(&key);
                } else {
                    claims.insert(key, value);
                }
            }
        }
        claims
    };
    let refused = [
        ("wrong audience", with(json!({"aud": "anon-app"}))),
        ("no audience", with(json!({"aud": null}))),
        (
            "wrong issuer",
            with(json!({"iss": "https://evil.example/auth/v1"})),
        ),
        ("expired past the leeway", with(json!({"exp": now() - 31}))),
        ("no expiry", with(json!({"exp": null}))),
        ("not yet valid", with(json!({"nbf": now() + 120}))),
        (
            "nil subject",
            with(json!({"sub": uuid::Uuid::nil().to_string()})),
        ),
        ("subject not a UUID", with(json!({"sub": "auth0|12345"}))),
        ("no subject", with(json!({"sub": null}))),
    ];
    for (why, claims) in refused {
        let token = hs256(&claims, SUPABASE_SECRET)?;
        assert_eq!(
            verifier.verify(&token).await,
            Err(AuthError::Invalid),
            "{why}"
        );
    }
    let within_leeway = with(json!({"exp": now() - 5, "nbf": now() + 5}));
    assert!(
        verifier
            .verify(&hs256(&within_leeway, SUPABASE_SECRET)?)
            .await
            .is_ok(),
        "a few seconds of clock skew is within the leeway"
    );
    let other_secret = hs256(&claims, "another-projects-secret-of-32-bytes-or-more")?;
    assert_eq!(
        verifier.verify(&other_secret).await,
        Err(AuthError::Invalid)
    );

    // `alg: none` and an RS256 token while no key set is configured.
    let unsigned = format!(
        "{}.{}.",
        base64_url(r#"{"alg":"none","typ":"JWT"}"#),
        base64_url(&claims.to_string())
    );
    assert_eq!(verifier.verify(&unsigned).await, Err(AuthError::Invalid));
    let rs256 = signed(Algorithm::RS256, Some("rsa-1"), &claims)?;
    assert_eq!(verifier.verify(&rs256).await, Err(AuthError::Invalid));
    Ok(())
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// A JWKS endpoint on loopback whose document and health the test changes, counting fetches.
#[derive(Clone)]
struct JwksServer {
    document: Arc<Mutex<(StatusCode, String)>>,
    fetches: Arc<AtomicUsize>,
    url: String,
}

impl JwksServer {
    async fn start(document: String) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr()?);
        let server = Self {
            document: Arc::new(Mutex::new((StatusCode::OK, document))),
            fetches: Arc::new(AtomicUsize::new(0)),
            url,
        };
        let state = server.clone();
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let state = state.clone();
                async move {
                    state.fetches.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = state.document.lock().await.clone();
                    (status, body)
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(server)
    }

    async fn serve(&self, status: StatusCode, body: String) {
        *self.document.lock().await = (status, body);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn jwks_with(kids: &[&str]) -> anyhow::Result<String> {
    let all: Value = serde_json::from_slice(&key_file("jwks.json")?)?;
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|key| kids.contains(&key["kid"].as_str().unwrap_or_default()))
        .collect();
    Ok(json!({ "keys": keys }).to_string())
}

fn issuer_claims(user_id: uuid::Uuid) -> Value {
    json!({
        "sub": user_id.to_string(),
        "aud": "https://api.example.com",
        "iss": "https://tenant.auth.example.com/",
        "exp": now() + 600,
        "iat": now(),
    })
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_with_keys_from_a_jwks_url() -> anyhow::Result<()> {
    // The identity provider publishes only its RSA key at first.
    let jwks = JwksServer::start(jwks_with(&["rsa-1"])?).await?;
    let verifier = Verifier::new(AuthSettings {
        jwks_url: Some(jwks.url.clone()),
        audience: vec!["https://api.example.com".to_owned()],
        issuer: Some("https://tenant.auth.example.com/".to_owned()),
        ..AuthSettings::default()
    })
    .await?;
    assert_eq!(jwks.fetches(), 1, "fetched once at start");
    let user_id = new_id();
    let claims = issuer_claims(user_id);
    let rs256 = signed(Algorithm::RS256, Some("rsa-1"), &claims)?;
    assert_eq!(verifier.verify(&rs256).await, Ok((user_id, None)));
    assert_eq!(jwks.fetches(), 1, "a known kid is served from the cache");

    // It adds an EC key: the first token naming it triggers one refetch and verifies.
    jwks.serve(StatusCode::OK, jwks_with(&["rsa-1", "ec-1"])?)
        .await;
    let es256 = signed(Algorithm::ES256, Some("ec-1"), &claims)?;
    assert_eq!(verifier.verify(&es256).await, Ok((user_id, None)));
    assert_eq!(jwks.fetches(), 2);

    // Unknown kids within the minute: refused, with no further fetch however many arrive.
    for _ in 0..20 {
        let unknown = signed(Algorithm::RS256, Some("rotated-away"), &claims)?;
        assert_eq!(verifier.verify(&unknown).await, Err(AuthError::Invalid));
    }
    assert_eq!(jwks.fetches(), 2, "at most one refetch a minute");

    // A key used with the other algorithm (RS256 header, EC key id) is refused.
    let confused = signed(Algorithm::RS256, Some("ec-1"), &claims)?;
    assert_eq!(verifier.verify(&confused).await, Err(AuthError::Invalid));
    // An HS256 token when no secret is configured is refused.
    let hs = hs256(&claims, "any-secret-at-all-of-thirty-two-bytes")?;
    assert_eq!(verifier.verify(&hs).await, Err(AuthError::Invalid));
    Ok(())
}

#[tokio::test]
async fn a_failing_jwks_url_keeps_the_keys_held_and_an_unreachable_one_stops_the_start()
-> anyhow::Result<()> {
    let jwks = JwksServer::start(jwks_with(&["rsa-1"])?).await?;
    let verifier = Verifier::new(AuthSettings {
        jwks_url: Some(jwks.url.clone()),
        // No wait between refetches, so every unknown kid below refetches.
        jwks_refetch_interval: Duration::ZERO,
        ..AuthSettings::default()
    })
    .await?;
    jwks.serve(StatusCode::SERVICE_UNAVAILABLE, "down".to_owned())
        .await;
    let user_id = new_id();
    let claims = issuer_claims(user_id);
    let unknown = signed(Algorithm::ES256, Some("ec-1"), &claims)?;
    assert_eq!(verifier.verify(&unknown).await, Err(AuthError::Invalid));
    assert_eq!(
        jwks.fetches(),
        2,
        "the unknown kid refetched, and the fetch failed"
    );
    let known = signed(Algorithm::RS256, Some("rsa-1"), &claims)?;
    assert_eq!(verifier.verify(&known).await, Ok((user_id, None)));

    let unreachable = Verifier::new(AuthSettings {
        jwks_url: Some("http://127.0.0.1:9/jwks.json".to_owned()),
        ..AuthSettings::default()
    })
    .await;
    let message = unreachable
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        message.starts_with("AUTH_JWKS_URL cannot be used"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn a_supabase_token_signs_in_to_the_api_and_a_token_without_email_keeps_the_stored_one()
-> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let verifier = Arc::new(Verifier::new(supabase_settings()).await?);
    let keyring = providers::Keyring::parse(&SecretString::from(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ))?;
    let app = server::graphql::router(server::graphql::GraphqlState::new(
        test_db.db.clone(),
        verifier,
        server::graphql::EngineHandle {
            keyring: Arc::new(keyring),
            factory: None,
        },
        integrations::ProgressFeed::default(),
        server::graphql::ApiOptions::default(),
    ));
    let viewer = |token: String| {
        let app = app.clone();
        async move {
            let request = Request::post("/graphql")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::from(r#"{"query":"{ viewer { id email } }"}"#))?;
            let response = app.oneshot(request).await?;
            let body: Value =
                serde_json::from_slice(&to_bytes(response.into_body(), 1 << 16).await?)?;
            anyhow::Ok(body)
        }
    };
    let user_id = new_id();
    let body = viewer(hs256(&supabase_claims(user_id), SUPABASE_SECRET)?).await?;
    assert_eq!(
        body["data"]["viewer"],
        json!({"id": user_id.to_string(), "email": "ada@example.com"}),
        "{body}"
    );
    let mut without_email = supabase_claims(user_id);
    if let Value::Object(claims) = &mut without_email {
        claims.remove("email");
    }
    let token = hs256(&without_email, SUPABASE_SECRET)?;
    viewer(token).await?;
    let stored = test_db
        .count(
            "SELECT count(*) FROM users WHERE email = 'ada@example.com'",
            vec![],
        )
        .await?;
    assert_eq!(stored, 1, "a token without an email left the stored one");
    let wrong_audience = hs256(
        &json!({"sub": user_id.to_string(), "aud": "anon", "exp": now() + 60}),
        SUPABASE_SECRET,
    )?;
    let body = viewer(wrong_audience).await?;
    assert_eq!(
        body["errors"][0]["extensions"]["code"].as_str(),
        Some("UNAUTHENTICATED"),
        "{body}"
    );
    Ok(())
}
