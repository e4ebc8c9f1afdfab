//! Webhook endpoints: `POST /webhooks/{slug}` for app-level deliveries (HubSpot and Intercom signed
//! with the app's client secret, Stripe Connect with `STRIPE_WEBHOOK_SECRET`, Gmail Pub/Sub push
//! with a Google OIDC token) routed by the account id in the payload, and
//! `POST /webhooks/{slug}/{connection_id}` for per-account endpoints (Zendesk and Stripe with the
//! connection's sealed signing secret, Salesforce matched on the connection's organization id).
//!
//! The raw body (at most [`MAX_WEBHOOK_BODY_BYTES`]) is verified before anything is stored; the URL
//! verified is `PUBLIC_BASE_URL` plus the request's path and query, which is what the provider
//! called when a proxy sits in front. Bodies and secrets are never logged.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use integrations::Intake;
use providers::webhooks::{
    GmailPushVerifier, HubSpotVerifier, IntercomVerifier, SalesforceVerifier, StripeVerifier,
    WebhookVerifier, ZendeskVerifier, salesforce_acknowledgement,
};
use providers::{ProviderKind, WebhookRejection, WebhookRequest};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::AppState;

/// The largest webhook body accepted; larger ones are answered 413 unread.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 1024 * 1024;

/// How long fetched Google signing keys are trusted before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(60 * 60);

/// Google's signing keys, fetched on first use and refreshed hourly.
#[derive(Debug, Default)]
pub struct JwksCache {
    cached: Mutex<Option<(Instant, String)>>,
}

impl JwksCache {
    /// The JWKS document at `location` (an `http(s)` URL or a file path).
    async fn get(&self, location: &str) -> anyhow::Result<String> {
        let mut cached = self.cached.lock().await;
        if let Some((fetched_at, document)) = cached.as_ref()
            && fetched_at.elapsed() < JWKS_TTL
        {
            return Ok(document.clone());
        }
        let document = crate::read_document(location).await?;
        *cached = Some((Instant::now(), document.clone()));
        Ok(document)
    }
}

/// Why a delivery was not taken, as an HTTP answer and a metric result.
struct Refusal {
    status: StatusCode,
    result: &'static str,
}

impl Refusal {
    fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            result: "not_found",
        }
    }

    fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            result: "error",
        }
    }

    /// The connection's stored secret no longer opens (the keys changed): no retry can succeed,
    /// so the provider is told 410 and the connection is marked as needing attention.
    fn unverifiable() -> Self {
        Self {
            status: StatusCode::GONE,
            result: "unverifiable",
        }
    }

    /// The connection was disconnected: 410, so the provider stops delivering here.
    fn disconnected() -> Self {
        Self {
            status: StatusCode::GONE,
            result: "disconnected",
        }
    }

    fn message(&self) -> &'static str {
        match self.result {
            "not_found" => "no webhook endpoint here",
            "too_large" => "the delivery is over 1 MiB",
            "bad_request" => "the delivery could not be read",
            "rejected" => "the signature does not verify",
            "unverifiable" => {
                "this endpoint can no longer verify deliveries; reconnect the integration"
            }
            _ => "the delivery could not be stored; retry",
        }
    }
}

/// `POST /webhooks/{slug}`.
pub async fn app_level(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let verifier = app_verifier(&state, &slug).await;
    deliver(&state, &slug, verifier, None, &uri, &headers, body).await
}

/// `POST /webhooks/{slug}/{connection_id}`.
pub async fn per_connection(
    State(state): State<AppState>,
    Path((slug, connection_id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(connection_id) = Uuid::parse_str(&connection_id) else {
        return refuse(&state, &slug, Refusal::not_found());
    };
    let verifier = connection_verifier(&state, &slug, connection_id).await;
    deliver(
        &state,
        &slug,
        verifier,
        Some(connection_id),
        &uri,
        &headers,
        body,
    )
    .await
}

fn refuse(state: &AppState, slug: &str, refusal: Refusal) -> Response {
    let provider = ProviderKind::from_slug(slug).map_or("unknown", ProviderKind::slug);
    state.metrics.webhook(provider, refusal.result);
    (
        refusal.status,
        axum::Json(json!({"error": {"code": refusal.result, "message": refusal.message()}})),
    )
        .into_response()
}

/// Marks a connection whose webhook secret no longer opens as needing attention, logging only
/// when it was not marked already (once, not at every retried delivery).
async fn mark_unverifiable(state: &AppState, connection_id: Uuid, cause: &str) {
    let marked = integrations::needs_attention(&state.db, connection_id, UNVERIFIABLE_REASON).await;
    match marked {
        Ok(true) => {
            tracing::error!(%connection_id, %cause, "a stored webhook secret no longer opens; the connection needs reconnecting");
        }
        Ok(false) => {
            tracing::debug!(%connection_id, "webhook for an unverifiable connection refused")
        }
        Err(error) => tracing::error!(%connection_id, %error, "marking an unverifiable connection"),
    }
}

const UNVERIFIABLE_REASON: &str =
    "the stored webhook secret no longer opens (TOKEN_ENCRYPTION_KEYS changed?); reconnect";

async fn deliver(
    state: &AppState,
    slug: &str,
    verifier: Result<WebhookVerifier, Refusal>,
    connection_id: Option<Uuid>,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let verifier = match verifier {
        Ok(verifier) => verifier,
        Err(refusal) => return refuse(state, slug, refusal),
    };
    let provider = verifier.provider();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let result = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            };
            return refuse(state, slug, Refusal { status, result });
        }
    };
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path(), |path_and_query| path_and_query.as_str());
    let url = format!("{}{}", state.settings.public_base_url, path_and_query);
    let request = WebhookRequest {
        method: "POST",
        url: &url,
        headers,
        body: &body,
    };
    let events = match verifier.verify(&request, state.clock.now()) {
        Ok(events) => events,
        Err(error) => {
            if matches!(error.reason, WebhookRejection::InvalidConfiguration(_)) {
                tracing::error!(%provider, %error, "webhook verifier misconfigured");
                return refuse(state, slug, Refusal::internal());
            }
            tracing::warn!(%provider, ?connection_id, %error, "webhook rejected");
            return refuse(
                state,
                slug,
                Refusal {
                    status: StatusCode::UNAUTHORIZED,
                    result: "rejected",
                },
            );
        }
    };
    let n_events = events.len();
    let intakes = match state.inbox.take_all(events, connection_id).await {
        Ok(intakes) => intakes,
        Err(error) => {
            // Nothing of this delivery was stored; the provider retries a 5xx.
            tracing::error!(%provider, ?connection_id, %error, "storing a webhook delivery failed");
            return refuse(state, slug, Refusal::internal());
        }
    };
    let (mut n_accepted, mut n_duplicates, mut n_unknown) = (0_u32, 0_u32, 0_u32);
    for intake in intakes {
        match intake {
            Intake::Accepted { .. } => n_accepted += 1,
            Intake::Duplicate => n_duplicates += 1,
            Intake::UnknownAccount => n_unknown += 1,
        }
    }
    for (result, count) in [
        ("accepted", n_accepted),
        ("duplicate", n_duplicates),
        ("unknown_account", n_unknown),
    ] {
        for _ in 0..count {
            state.metrics.webhook(provider.slug(), result);
        }
    }
    tracing::info!(%provider, ?connection_id, n_events, n_accepted, n_duplicates, n_unknown, "webhook delivery taken");
    if provider == ProviderKind::Salesforce {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            salesforce_acknowledgement(),
        )
            .into_response();
    }
    (
        StatusCode::OK,
        axum::Json(json!({
            "accepted": n_accepted,
            "duplicates": n_duplicates,
            "unknown_account": n_unknown,
        })),
    )
        .into_response()
}

/// The app-level verifier of `slug`, from the settings; unknown slugs, providers without an
/// app-level endpoint and unconfigured ones are "not found".
async fn app_verifier(state: &AppState, slug: &str) -> Result<WebhookVerifier, Refusal> {
    let kind = ProviderKind::from_slug(slug).ok_or_else(Refusal::not_found)?;
    let provider = state.settings.provider(kind).cloned().unwrap_or_default();
    let not_configured = |what: &str| {
        tracing::warn!(provider = %kind, "app-level webhook refused: {what} is unset");
        Refusal::not_found()
    };
    match kind {
        ProviderKind::HubSpot => provider
            .client_secret
            .map(|secret| WebhookVerifier::HubSpot(HubSpotVerifier::new(secret)))
            .ok_or_else(|| not_configured("HUBSPOT_CLIENT_SECRET")),
        ProviderKind::Intercom => provider
            .client_secret
            .map(|secret| WebhookVerifier::Intercom(IntercomVerifier::new(secret)))
            .ok_or_else(|| not_configured("INTERCOM_CLIENT_SECRET")),
        ProviderKind::Stripe => provider
            .webhook_secret
            .map(|secret| WebhookVerifier::Stripe(StripeVerifier::new(vec![secret])))
            .ok_or_else(|| not_configured("STRIPE_WEBHOOK_SECRET")),
        ProviderKind::Gmail => {
            let settings = &state.settings;
            let service_account = settings
                .gmail_pubsub_service_account
                .as_deref()
                .ok_or_else(|| not_configured("GMAIL_PUBSUB_SERVICE_ACCOUNT"))?;
            let jwks = state
                .gmail_keys
                .get(&settings.google_oidc_certs_url)
                .await
                .map_err(|error| {
                    tracing::error!(%error, "fetching Google's signing keys");
                    Refusal::internal()
                })?;
            GmailPushVerifier::new(&jwks, &settings.gmail_pubsub_audience, service_account)
                .map(WebhookVerifier::Gmail)
                .map_err(|error| {
                    tracing::error!(%error, "Google's signing keys are unusable");
                    Refusal::internal()
                })
        }
        ProviderKind::Zendesk | ProviderKind::Salesforce => Err(Refusal::not_found()),
    }
}

/// The verifier of one connection's endpoint: its sealed signing secret (Zendesk, Stripe) or its
/// organization id (Salesforce). A connection that does not exist, belongs to another provider or
/// has nothing to verify with is "not found".
async fn connection_verifier(
    state: &AppState,
    slug: &str,
    connection_id: Uuid,
) -> Result<WebhookVerifier, Refusal> {
    let kind = ProviderKind::from_slug(slug).ok_or_else(Refusal::not_found)?;
    let found = integrations::connection_with_definition(&state.db, connection_id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "reading a webhook's connection");
            Refusal::internal()
        })?;
    let Some((connection, Some(definition))) = found else {
        return Err(Refusal::not_found());
    };
    if definition.slug != kind.slug() {
        return Err(Refusal::not_found());
    }
    // A disconnected connection takes nothing: 410 tells the provider the endpoint is gone.
    if connection.status == integrations::Lifecycle::Disconnected.as_str() {
        return Err(Refusal::disconnected());
    }
    match kind {
        ProviderKind::Salesforce => {
            let organization_id = connection
                .connection_metadata
                .get("external_account_id")
                .and_then(Value::as_str)
                .ok_or_else(Refusal::not_found)?;
            SalesforceVerifier::new(organization_id)
                .map(WebhookVerifier::Salesforce)
                .map_err(|error| {
                    tracing::warn!(%connection_id, %error, "stored Salesforce organization id is unusable");
                    Refusal::not_found()
                })
        }
        ProviderKind::Zendesk | ProviderKind::Stripe => {
            let secret = match state.credentials.webhook_secret(connection_id).await {
                Ok(secret) => secret.ok_or_else(Refusal::not_found)?,
                Err(integrations::EngineError::Unexpected(cause))
                    if cause.downcast_ref::<sea_orm::DbErr>().is_none() =>
                {
                    mark_unverifiable(state, connection_id, &format!("{cause:#}")).await;
                    return Err(Refusal::unverifiable());
                }
                Err(error) => {
                    tracing::error!(%connection_id, %error, "opening a webhook secret");
                    return Err(Refusal::internal());
                }
            };
            Ok(match kind {
                ProviderKind::Zendesk => WebhookVerifier::Zendesk(ZendeskVerifier::new(secret)),
                _ => WebhookVerifier::Stripe(StripeVerifier::new(vec![secret])),
            })
        }
        ProviderKind::HubSpot | ProviderKind::Intercom | ProviderKind::Gmail => {
            Err(Refusal::not_found())
        }
    }
}
