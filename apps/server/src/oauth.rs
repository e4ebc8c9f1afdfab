//! `GET /oauth/callback`: the provider sends the browser back here, and it is redirected (303) to
//! `APP_URL` with `?complete=<completion code>`, or `?error=<short code>` (and
//! `error_description` when the provider gave a reason).
//!
//! The callback does not connect anything by itself: whoever follows an authorization URL reaches
//! it, not only the user who started it (connection fixation: someone else's provider account
//! would land in the starter's workspace). The completion code seals the state and the provider's
//! code (AES-256-GCM with the token keys, ten minutes); only the browser that came back holds it,
//! and the web app redeems it with `completeConnection(code:)` under its own bearer token. The
//! engine then exchanges the code only if that user is the one who started the authorization.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use entity::oauth_states;
use integrations::{EngineError, OAuthCallback, ProviderFactory as _};
use providers::{ConnectionConfig, OAuthClient, ProviderError, ProviderKind};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::AppState;

/// The callback's query string.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /oauth/callback?state=…&code=…` or `?state=…&error=…`.
pub(crate) async fn callback(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let outcome = complete(&state, query).await;
    let pairs: Vec<(&str, String)> = match outcome {
        Ok(completion) => {
            tracing::info!("OAuth callback: completion code issued");
            vec![("complete", completion)]
        }
        Err(failure) => {
            tracing::warn!(code = failure.code, detail = %failure.detail, "OAuth callback failed");
            let mut pairs = vec![("error", failure.code.to_owned())];
            if let Some(description) = &failure.description {
                pairs.push(("error_description", description.clone()));
            }
            pairs
        }
    };
    redirect(&state.settings.app_url, &pairs)
}

/// Why a callback did not connect: a short code for the app, an optional text for the user, and a
/// detail for the log only.
struct Failure {
    code: &'static str,
    description: Option<String>,
    detail: String,
}

impl Failure {
    fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            description: None,
            detail: detail.into(),
        }
    }
}

/// How long a completion code may be redeemed (the state it seals expires as soon).
pub(crate) const COMPLETION_TTL_SECONDS: i64 = 10 * 60;

/// What a completion code seals.
#[derive(Debug, serde::Serialize, Deserialize)]
struct Completion {
    state: String,
    code: String,
    issued_at: i64,
}

const COMPLETION_BINDING: &[u8] = b"oauth-completion:v1";

/// Seals the callback's state and code as a completion code (URL-safe).
fn seal_completion(
    keyring: &providers::Keyring,
    state: String,
    code: String,
) -> Result<String, Failure> {
    use base64::Engine as _;
    let completion = Completion {
        state,
        code,
        issued_at: chrono::Utc::now().timestamp(),
    };
    let json = serde_json::to_vec(&completion)
        .map_err(|error| Failure::new("internal", format!("encoding the completion: {error}")))?;
    let sealed = keyring
        .seal(&json, COMPLETION_BINDING)
        .map_err(|error| Failure::new("internal", format!("sealing the completion: {error}")))?;
    let key_id = sealed.key_id.as_bytes();
    let mut bytes = Vec::with_capacity(1 + key_id.len() + sealed.bytes.len());
    bytes.push(u8::try_from(key_id.len()).unwrap_or(u8::MAX));
    bytes.extend_from_slice(key_id);
    bytes.extend_from_slice(&sealed.bytes);
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The state and provider code a completion code sealed, unless it is not one of ours or has
/// expired.
pub(crate) fn open_completion(
    keyring: &providers::Keyring,
    completion: &str,
) -> Result<(String, String), &'static str> {
    use base64::Engine as _;
    let invalid = "the completion code is not one this server issued";
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(completion.trim())
        .map_err(|_| invalid)?;
    let (&length, rest) = bytes.split_first().ok_or(invalid)?;
    let (key_id, sealed) = rest.split_at_checked(usize::from(length)).ok_or(invalid)?;
    let sealed = providers::SealedSecret {
        key_id: String::from_utf8(key_id.to_vec()).map_err(|_| invalid)?,
        bytes: sealed.to_vec(),
    };
    let json = keyring
        .open(&sealed, COMPLETION_BINDING)
        .map_err(|_| invalid)?;
    let completion: Completion = {
        use providers::secrecy::ExposeSecret as _;
        serde_json::from_slice(json.expose_secret()).map_err(|_| invalid)?
    };
    if chrono::Utc::now().timestamp() - completion.issued_at > COMPLETION_TTL_SECONDS {
        return Err("the completion code has expired; start connecting again");
    }
    Ok((completion.state, completion.code))
}

/// The outcome of a callback: a completion code for the browser, or why not.
async fn complete(state: &AppState, query: CallbackQuery) -> Result<String, Failure> {
    let raw_state = query
        .state
        .filter(|value| !value.is_empty())
        .ok_or_else(|| Failure::new("invalid_request", "the callback has no state"))?;
    let user_id = state_user(state, &raw_state).await?;
    if query.error.is_none()
        && let Some(code) = query.code.as_ref().filter(|code| !code.is_empty())
    {
        return seal_completion(&state.sealing, raw_state, code.clone());
    }
    let provider_error = query.error.clone();
    let callback = OAuthCallback {
        state: raw_state,
        code: query.code,
        error: query.error,
        user_id,
    };
    let providers = state.providers.clone();
    let oauth_for = move |kind: ProviderKind,
                          config: &ConnectionConfig|
          -> Result<OAuthClient, EngineError> { providers.oauth(kind, config) };
    state
        .connections
        .complete(callback, &oauth_for)
        .await
        .map_err(|error| classify(error, provider_error, query.error_description))
        .map(|connection_id| connection_id.to_string())
}

/// The user who started the authorization `raw_state` belongs to: an unknown state is refused
/// here, before anything is sealed.
async fn state_user(state: &AppState, raw_state: &str) -> Result<Uuid, Failure> {
    let hash = hex::encode(Sha256::digest(raw_state.as_bytes()));
    let row = oauth_states::Entity::find()
        .filter(oauth_states::Column::StateHash.eq(hash))
        .one(&state.db)
        .await
        .map_err(|error| Failure::new("internal", format!("reading the state: {error}")))?;
    let row = row.ok_or_else(|| Failure::new("invalid_state", "unknown authorization state"))?;
    let now = chrono::Utc::now().fixed_offset();
    if row.consumed_at.is_some() || row.expires_at <= now {
        return Err(Failure::new(
            "state_expired",
            "the authorization state has expired or was already used",
        ));
    }
    Ok(row.user_id)
}

fn classify(
    error: EngineError,
    provider_error: Option<String>,
    provider_description: Option<String>,
) -> Failure {
    let detail = error.to_string();
    match error {
        // The user refused, or the provider reported an error on the redirect: show its code.
        EngineError::Provider(ProviderError::Rejected { .. }) if provider_error.is_some() => {
            Failure {
                code: provider_code(provider_error.as_deref()),
                description: provider_description.map(|text| text.chars().take(200).collect()),
                detail,
            }
        }
        EngineError::Provider(ProviderError::Rejected { message, .. }) => Failure {
            code: "provider_rejected",
            description: Some(message.chars().take(200).collect()),
            detail,
        },
        EngineError::Provider(ProviderError::Misconfigured { .. }) => {
            Failure::new("provider_not_configured", detail)
        }
        EngineError::Provider(_) => Failure::new("provider_error", detail),
        EngineError::Conflict(_) => Failure::new("state_expired", detail),
        EngineError::Forbidden(_) => Failure::new("forbidden", detail),
        EngineError::InvalidInput(_) => Failure::new("invalid_request", detail),
        EngineError::NotFound(_) => Failure::new("not_found", detail),
        _ => Failure::new("internal", detail),
    }
}

/// The provider's OAuth error code when it is one of RFC 6749's (section 4.1.2.1), else a generic
/// one: the code goes into a URL and the app's UI, so arbitrary text is not echoed.
fn provider_code(error: Option<&str>) -> &'static str {
    match error {
        Some("access_denied") => "access_denied",
        Some("invalid_request") => "invalid_request",
        Some("unauthorized_client") => "unauthorized_client",
        Some("unsupported_response_type") => "unsupported_response_type",
        Some("invalid_scope") => "invalid_scope",
        Some("server_error") => "server_error",
        Some("temporarily_unavailable") => "temporarily_unavailable",
        _ => "provider_error",
    }
}

fn redirect(app_url: &str, pairs: &[(&str, String)]) -> Response {
    let location = match url::Url::parse(app_url) {
        Ok(mut url) => {
            url.query_pairs_mut()
                .extend_pairs(pairs.iter().map(|(key, value)| (*key, value.as_str())));
            url.to_string()
        }
        Err(error) => {
            tracing::error!(%error, "APP_URL does not parse");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
