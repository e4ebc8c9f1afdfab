//! Bearer JWT authentication (HS256 with `AUTH_JWT_SECRET`, `exp` enforced by `jsonwebtoken`):
//! the token's `sub` is the user id, and the user row is upserted from the claims.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use providers::secrecy::{ExposeSecret as _, SecretString};
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait as _, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims the platform's tokens carry.
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
    /// Their email.
    pub email: String,
}

/// Why a request is not authenticated (the client only learns that it is not).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("sign in: no bearer token")]
    Missing,
    /// Bad signature, expired, malformed, or a subject that is not a user id.
    #[error("the bearer token is invalid or expired")]
    Invalid,
}

/// Verifies `token` with `secret`.
pub fn verify(token: &str, secret: &SecretString) -> Result<Claims, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.expose_secret().as_bytes()),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|_| AuthError::Invalid)
}

/// Signs claims (for the embedded default's dev token and for tests).
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

/// The viewer of a request with `authorization` (the header's value), upserting their user row
/// unless `known` says this process wrote it, with this email, in the last five minutes.
pub async fn authenticate(
    db: &DatabaseConnection,
    authorization: Option<&str>,
    secret: &SecretString,
    known: &KnownUsers,
) -> Result<Result<Viewer, AuthError>, sea_orm::DbErr> {
    let Some(token) = authorization.and_then(|value| value.strip_prefix("Bearer ")) else {
        return Ok(Err(AuthError::Missing));
    };
    let Ok(claims) = verify(token.trim(), secret) else {
        return Ok(Err(AuthError::Invalid));
    };
    let Ok(user_id) = Uuid::parse_str(&claims.sub) else {
        return Ok(Err(AuthError::Invalid));
    };
    let email = claims.email.unwrap_or_default();
    if known.is_fresh(user_id, &email) {
        return Ok(Ok(Viewer { user_id, email }));
    }
    let now = chrono::Utc::now().fixed_offset();
    entity::users::Entity::insert(entity::users::ActiveModel {
        id: Set(user_id),
        email: Set(email.clone()),
        display_name: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(entity::users::Column::Id)
            .update_column(entity::users::Column::Email)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    known.remember(user_id, email.clone());
    Ok(Ok(Viewer { user_id, email }))
}
