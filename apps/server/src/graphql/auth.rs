//! Bearer JWT authentication. Tokens are HS256 with `AUTH_JWT_SECRET` (Supabase's project secret,
//! for instance) and/or RS256/ES256 with keys from `AUTH_JWKS_URL` (Auth0, Clerk, Cognito,
//! Supabase's asymmetric keys). `exp` and `sub` are required, `nbf` is honoured, `aud` and `iss`
//! are checked when `AUTH_JWT_AUDIENCE` / `AUTH_JWT_ISSUER` are set, within a leeway of at most
//! 30 s. `sub` must be a non-nil UUID: it is the user's id, and the user row is upserted from the
//! claims on first sight (the email is kept when a later token carries none).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use providers::secrecy::{ExposeSecret as _, SecretString};
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait as _, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims the platform reads from a token (others are ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (a UUID).
    pub sub: String,
    /// The user's email.
    #[serde(default)]
    pub email: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// The signed-in user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// Their id.
    pub user_id: Uuid,
    /// Their email (empty when no token has carried one yet).
    pub email: String,
}

/// Why a request is not authenticated (the client only learns that it is not).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("sign in: no bearer token")]
    Missing,
    /// Bad signature, unknown key, wrong audience or issuer, expired, not yet valid, malformed, or
    /// a subject that is not a user id.
    #[error("the bearer token is invalid or expired")]
    Invalid,
}

/// The largest leeway accepted for `exp` and `nbf`.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

/// How long fetched signing keys are used before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(10 * 60);

/// At most one refetch (for an unknown `kid`, or after a failure) and one failure log per this.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// How tokens are checked.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `AUTH_JWT_SECRET`: HS256 tokens are accepted when set.
    pub hs256_secret: Option<SecretString>,
    /// `AUTH_JWKS_URL`: RS256 and ES256 tokens are accepted, with these keys, when set (an
    /// `http(s)` URL or a file path).
    pub jwks_url: Option<String>,
    /// `AUTH_JWT_AUDIENCE` (comma list): a token's `aud` must name one; unchecked when empty.
    pub audience: Vec<String>,
    /// `AUTH_JWT_ISSUER`: a token's `iss` must equal it when set.
    pub issuer: Option<String>,
    /// `AUTH_JWT_LEEWAY_SECONDS`, at most [`MAX_LEEWAY`].
    pub leeway: Duration,
    /// The least time between two refetches of the key set (for an unknown `kid`, or when the
    /// held keys are older than ten minutes); one minute unless a test shortens it.
    pub jwks_refetch_interval: Duration,
}

impl AuthSettings {
    /// HS256 with `secret` only, no audience or issuer, a 30 s leeway (tests, the demo token).
    pub fn hs256(secret: SecretString) -> Self {
        Self {
            hs256_secret: Some(secret),
            ..Self::default()
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            jwks_url: None,
            audience: Vec::new(),
            issuer: None,
            leeway: MAX_LEEWAY,
            jwks_refetch_interval: JWKS_REFETCH_INTERVAL,
        }
    }
}

/// Why the verifier cannot start.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// Neither a secret nor a key set is configured.
    #[error("AUTH_JWT_SECRET or AUTH_JWKS_URL must be set")]
    NoKeys,
    /// The key set could not be fetched or read at start.
    #[error("AUTH_JWKS_URL cannot be used: {0}")]
    Jwks(String),
}

/// Checks bearer tokens. Cheap to share (`Arc`); the key set is cached inside.
#[derive(Debug)]
pub struct Verifier {
    settings: AuthSettings,
    jwks: Option<JwksSource>,
}

impl Verifier {
    /// A verifier for `settings`; with `AUTH_JWKS_URL`, fetches the key set once and fails when it
    /// cannot.
    pub async fn new(settings: AuthSettings) -> Result<Self, VerifierError> {
        let leeway = settings.leeway.min(MAX_LEEWAY);
        let settings = AuthSettings { leeway, ..settings };
        let jwks = match &settings.jwks_url {
            Some(location) => {
                let source = JwksSource::new(location.clone(), settings.jwks_refetch_interval);
                let keys = source
                    .fetch()
                    .await
                    .map_err(|error| VerifierError::Jwks(format!("{location}: {error:#}")))?;
                *source.lock() = JwksState::fresh(keys);
                Some(source)
            }
            None => None,
        };
        if settings.hs256_secret.is_none() && jwks.is_none() {
            return Err(VerifierError::NoKeys);
        }
        Ok(Self { settings, jwks })
    }

    /// A verifier for `settings` whose key set (if any) is fetched on first use; `None` when no
    /// key is configured.
    pub fn unfetched(settings: AuthSettings) -> Option<Self> {
        let leeway = settings.leeway.min(MAX_LEEWAY);
        let settings = AuthSettings { leeway, ..settings };
        let jwks = settings
            .jwks_url
            .clone()
            .map(|location| JwksSource::new(location, settings.jwks_refetch_interval));
        (settings.hs256_secret.is_some() || jwks.is_some()).then_some(Self { settings, jwks })
    }

    /// An HS256-only verifier (needs no I/O).
    pub fn hs256(secret: SecretString) -> Self {
        Self {
            settings: AuthSettings::hs256(secret),
            jwks: None,
        }
    }

    /// The user id and email of a valid `token`.
    pub async fn verify(&self, token: &str) -> Result<(Uuid, Option<String>), AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Invalid)?;
        let key = match header.alg {
            Algorithm::HS256 => {
                let secret = self
                    .settings
                    .hs256_secret
                    .as_ref()
                    .ok_or(AuthError::Invalid)?;
                DecodingKey::from_secret(secret.expose_secret().as_bytes())
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                let jwks = self.jwks.as_ref().ok_or(AuthError::Invalid)?;
                jwks.key(header.kid.as_deref(), header.alg).await?
            }
            _ => return Err(AuthError::Invalid),
        };
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        if self.settings.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.settings.audience);
            validation.required_spec_claims.insert("aud".to_owned());
        }
        if let Some(issuer) = &self.settings.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|_| AuthError::Invalid)?
            .claims;
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| AuthError::Invalid)?;
        if user_id.is_nil() {
            return Err(AuthError::Invalid);
        }
        Ok((user_id, claims.email.filter(|email| !email.is_empty())))
    }
}

/// A JWKS document's keys, fetched at start, refreshed after [`JWKS_TTL`], and refetched for an
/// unknown `kid` at most once per refetch interval. A failed fetch keeps the keys held and is
/// logged at most once per interval.
#[derive(Debug)]
struct JwksSource {
    location: String,
    refetch_interval: Duration,
    state: Mutex<JwksState>,
    /// Serialises fetches, so a burst of unknown kids makes one request.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct JwksState {
    keys: Option<JwkSet>,
    fetched_at: Option<Instant>,
    last_refetch: Option<Instant>,
    last_failure_log: Option<Instant>,
}

impl JwksState {
    fn fresh(keys: JwkSet) -> Self {
        Self {
            keys: Some(keys),
            fetched_at: Some(Instant::now()),
            ..Self::default()
        }
    }

    fn may_refetch(&self, interval: Duration) -> bool {
        self.last_refetch.is_none_or(|at| at.elapsed() >= interval)
    }
}

impl JwksSource {
    fn new(location: String, refetch_interval: Duration) -> Self {
        Self {
            location,
            refetch_interval,
            state: Mutex::new(JwksState::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JwksState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        Ok(serde_json::from_str(
            &crate::read_document(&self.location).await?,
        )?)
    }

    /// The key for `kid` and `alg` from the held set, refetching when due.
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let (found, refetch) = {
            let state = self.lock();
            let found = state.keys.as_ref().and_then(|keys| find(keys, kid, alg));
            let stale = state.fetched_at.is_none_or(|at| at.elapsed() >= JWKS_TTL);
            let refetch = (stale || found.is_none()) && state.may_refetch(self.refetch_interval);
            (found, refetch)
        };
        if !refetch {
            return found.ok_or(AuthError::Invalid);
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have refetched while this one waited.
        if self.lock().may_refetch(self.refetch_interval) {
            let fetched = self.fetch().await;
            let mut state = self.lock();
            state.last_refetch = Some(Instant::now());
            match fetched {
                Ok(keys) => {
                    state.keys = Some(keys);
                    state.fetched_at = Some(Instant::now());
                }
                Err(error) => {
                    if state
                        .last_failure_log
                        .is_none_or(|at| at.elapsed() >= self.refetch_interval)
                    {
                        state.last_failure_log = Some(Instant::now());
                        tracing::warn!(url = %self.location, error = %format!("{error:#}"), "AUTH_JWKS_URL fetch failed; keeping the keys held");
                    }
                }
            }
        }
        let state = self.lock();
        state
            .keys
            .as_ref()
            .and_then(|keys| find(keys, kid, alg))
            .ok_or(AuthError::Invalid)
    }
}

/// The key named `kid` (or, for a token without `kid`, the set's only key), when it suits `alg`.
fn find(keys: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let jwk = match kid {
        Some(kid) => keys.find(kid)?,
        None if keys.keys.len() == 1 => keys.keys.first()?,
        None => return None,
    };
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg.to_string() != format!("{alg:?}")
    {
        return None;
    }
    DecodingKey::from_jwk(jwk).ok()
}

/// Signs claims with HS256 (for the embedded default's dev token and for tests).
pub fn sign(claims: &Claims, secret: &SecretString) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
}

/// How long an upserted user row is trusted to still exist before the next request writes it again.
const KNOWN_USER_TTL: Duration = Duration::from_secs(5 * 60);

/// At most this many users are remembered; past it the memory starts over.
const KNOWN_USERS_MAX: usize = 10_000;

/// The users whose row this process upserted recently, with the email it wrote: their next
/// requests skip the write (one statement less per request). Only ever skips a write; never
/// answers a read.
#[derive(Debug, Default)]
pub struct KnownUsers(Mutex<HashMap<Uuid, (String, Instant)>>);

impl KnownUsers {
    fn is_fresh(&self, user_id: Uuid, email: &str) -> bool {
        let known = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known
            .get(&user_id)
            .is_some_and(|(known_email, at)| known_email == email && at.elapsed() < KNOWN_USER_TTL)
    }

    fn remember(&self, user_id: Uuid, email: String) {
        let mut known = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= KNOWN_USERS_MAX {
            known.clear();
        }
        known.insert(user_id, (email, Instant::now()));
    }
}

/// The bearer token of an `Authorization` header's value (`Bearer`, any case).
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The viewer of a request with `authorization` (the header's value), upserting their user row
/// unless `known` says this process wrote it, with this email, in the last five minutes. A
/// first-seen `sub` gets a row with the token's email, or an empty one when it carries none; a
/// later token without an email leaves the stored one as it is.
pub async fn authenticate(
    db: &DatabaseConnection,
    authorization: Option<&str>,
    verifier: &Verifier,
    known: &KnownUsers,
) -> Result<Result<Viewer, AuthError>, sea_orm::DbErr> {
    let Some(token) = bearer(authorization) else {
        return Ok(Err(AuthError::Missing));
    };
    let Ok((user_id, email)) = verifier.verify(token).await else {
        return Ok(Err(AuthError::Invalid));
    };
    let email_or_empty = email.clone().unwrap_or_default();
    if known.is_fresh(user_id, &email_or_empty) {
        return Ok(Ok(Viewer {
            user_id,
            email: email_or_empty,
        }));
    }
    let now = chrono::Utc::now().fixed_offset();
    let insert = entity::users::Entity::insert(entity::users::ActiveModel {
        id: Set(user_id),
        email: Set(email_or_empty.clone()),
        display_name: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    });
    let on_conflict = if email.is_some() {
        OnConflict::column(entity::users::Column::Id)
            .update_column(entity::users::Column::Email)
            .to_owned()
    } else {
        OnConflict::column(entity::users::Column::Id)
            .do_nothing()
            .to_owned()
    };
    let written = insert
        .on_conflict(on_conflict)
        .exec_without_returning(db)
        .await;
    match written {
        Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
        Err(error) => return Err(error),
    }
    known.remember(user_id, email_or_empty.clone());
    Ok(Ok(Viewer {
        user_id,
        email: email_or_empty,
    }))
}
