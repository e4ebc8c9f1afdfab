//! `GET /oauth/callback`: the provider sends the user back here; the engine completes the
//! connection and the user is redirected (303) to `APP_URL` with `?connected=<connection id>` or
//! `?error=<short code>` (and `error_description` when the provider gave a reason).
//!
//! Who is signed in: until the GraphQL half adds JWT authentication to this route, the user is the
//! one recorded with the `state` when the authorization started. The state is a single-use,
//! unguessable, 10-minute value only that user's browser received, so possession of it stands for
//! the session; the engine still checks the user against the state row.

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
pub async fn callback(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let outcome = complete(&state, query).await;
    let pairs: Vec<(&str, String)> = match &outcome {
        Ok(connection_id) => {
            tracing::info!(%connection_id, "OAuth connection completed");
            vec![("connected", connection_id.to_string())]
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

async fn complete(state: &AppState, query: CallbackQuery) -> Result<Uuid, Failure> {
    let raw_state = query
        .state
        .filter(|value| !value.is_empty())
        .ok_or_else(|| Failure::new("invalid_request", "the callback has no state"))?;
    let user_id = state_user(state, &raw_state).await?;
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
}

/// The user who started the authorization `raw_state` belongs to (see the module docs).
async fn state_user(state: &AppState, raw_state: &str) -> Result<Uuid, Failure> {
    let hash = hex::encode(Sha256::digest(raw_state.as_bytes()));
    let row = oauth_states::Entity::find()
        .filter(oauth_states::Column::StateHash.eq(hash))
        .one(&state.db)
        .await
        .map_err(|error| Failure::new("internal", format!("reading the state: {error}")))?;
    row.map(|row| row.user_id)
        .ok_or_else(|| Failure::new("invalid_state", "unknown authorization state"))
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
