//! Gmail push notifications: a Cloud Pub/Sub push whose `Authorization: Bearer` token is a
//! Google-signed OIDC JWT (RS256), checked against an injected JWKS and the injected `now`; the
//! body's base64 `message.data` names the mailbox and the history id to sync from.

use std::collections::HashMap;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ProviderKind;
use crate::webhooks::common;
use crate::webhooks::{VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest};

const PROVIDER: ProviderKind = ProviderKind::Gmail;
const AUTHORIZATION_HEADER: &str = "Authorization";

/// The issuers Google's OIDC tokens carry.
const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Clock skew allowed between Google and us when checking `exp`, `nbf` and `iat`, in seconds.
pub(crate) const CLOCK_SKEW_SECONDS: i64 = 60;

/// Pub/Sub sends standard base64; padding is accepted either way.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Verifies Gmail Pub/Sub push requests authenticated with a Google OIDC token.
#[derive(Debug, Clone)]
pub struct GmailPushVerifier {
    keys_by_id: HashMap<String, DecodingKey>,
    /// Boxed because it is large and [`crate::WebhookVerifier`] holds one verifier of any kind.
    validation: Box<Validation>,
    service_account_email: String,
}

impl GmailPushVerifier {
    /// A verifier trusting the RSA keys in `jwks_json` (Google's JWKS document, e.g. from
    /// `https://www.googleapis.com/oauth2/v3/certs`, fetched and refreshed by the caller), for
    /// tokens whose `aud` is `audience` (the push subscription's configured audience, by default
    /// the push endpoint URL) and whose `email` is `service_account_email` (the subscription's
    /// push service account). Keys without a `kid` or not RSA are skipped; a document with no
    /// usable key is an error.
    pub fn new(
        jwks_json: &str,
        audience: &str,
        service_account_email: &str,
    ) -> Result<Self, WebhookError> {
        let configuration_error = |what: &str| {
            WebhookError::new(
                PROVIDER,
                WebhookRejection::InvalidConfiguration(what.to_owned()),
            )
        };
        let key_set: JwkSet = serde_json::from_str(jwks_json)
            .map_err(|error| configuration_error(&format!("the JWKS does not parse ({error})")))?;
        let keys_by_id: HashMap<String, DecodingKey> = key_set
            .keys
            .iter()
            .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
            .filter_map(|jwk| {
                let key_id = jwk.common.key_id.clone()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((key_id, key))
            })
            .collect();
        if keys_by_id.is_empty() {
            return Err(configuration_error("the JWKS has no RSA key with a kid"));
        }
        if audience.is_empty() || service_account_email.is_empty() {
            return Err(configuration_error(
                "the audience and the service account email must not be empty",
            ));
        }

        // The signature, issuer and audience are left to jsonwebtoken; the times are checked
        // against the injected `now` in `verify`, so jsonwebtoken never reads the system clock.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&GOOGLE_ISSUERS);
        validation.set_audience(&[audience]);
        Ok(Self {
            keys_by_id,
            validation: Box::new(validation),
            service_account_email: service_account_email.to_owned(),
        })
    }

    /// Verifies the bearer token (signature by a key of the JWKS chosen by `kid`, issuer,
    /// audience, `email` and `email_verified`, and `exp`/`nbf`/`iat` against `now` with 60 s of
    /// skew), then returns the notification, deduplicated on `gmail:{messageId}`, with the
    /// mailbox's `emailAddress` as account and `historyId` in the payload.
    pub fn verify(
        &self,
        request: &WebhookRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        let authorization = common::required_header(PROVIDER, request, AUTHORIZATION_HEADER)?;
        let token = bearer_token(authorization).ok_or_else(|| {
            common::malformed_header(PROVIDER, AUTHORIZATION_HEADER, "not a Bearer token")
        })?;
        self.verify_token(token, now)?;
        notification(request.body)
    }

    /// Checks `token` as of `now`.
    fn verify_token(&self, token: &str, now: DateTime<Utc>) -> Result<(), WebhookError> {
        let invalid =
            |why: &'static str| WebhookError::new(PROVIDER, WebhookRejection::InvalidToken(why));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid("not signed with RS256"));
        }
        let key_id = header.kid.ok_or_else(|| invalid("no key id"))?;
        let key = self
            .keys_by_id
            .get(&key_id)
            .ok_or_else(|| invalid("unknown key id"))?;
        let claims = jsonwebtoken::decode::<GoogleClaims>(token, key, &self.validation)
            .map_err(|error| {
                invalid(match error.kind() {
                    ErrorKind::InvalidSignature => "signature does not verify",
                    ErrorKind::InvalidIssuer => "wrong issuer",
                    ErrorKind::InvalidAudience => "wrong audience",
                    ErrorKind::MissingRequiredClaim(_) => "missing exp, iss or aud",
                    ErrorKind::InvalidAlgorithm => "not signed with RS256",
                    ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => "malformed claims",
                    _ => "malformed token",
                })
            })?
            .claims;

        // jsonwebtoken has already required `exp`; a token without one is never accepted.
        let exp = claims
            .exp
            .ok_or_else(|| invalid("missing exp, iss or aud"))?;
        let now = now.timestamp();
        if now > exp.saturating_add(CLOCK_SKEW_SECONDS) {
            return Err(invalid("expired"));
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW_SECONDS))
        {
            return Err(invalid("not yet valid"));
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(CLOCK_SKEW_SECONDS))
        {
            return Err(invalid("issued in the future"));
        }
        if claims.email.as_deref() != Some(self.service_account_email.as_str()) {
            return Err(invalid("wrong service account email"));
        }
        // Google sends a boolean; old tokens sent the string "true".
        let email_verified = matches!(&claims.email_verified, Some(Value::Bool(true)))
            || matches!(&claims.email_verified, Some(Value::String(text)) if text == "true");
        if !email_verified {
            return Err(invalid("email not verified"));
        }
        Ok(())
    }
}

/// The claims read from Google's token beyond those jsonwebtoken checks.
#[derive(Debug, Deserialize)]
struct GoogleClaims {
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    email: Option<String>,
    email_verified: Option<Value>,
}

/// The token of `Bearer <token>`, the scheme matched case-insensitively.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The push body as one event.
fn notification(body: &[u8]) -> Result<Vec<VerifiedEvent>, WebhookError> {
    let push = common::json_body(PROVIDER, body)?;
    let message = push
        .get("message")
        .ok_or_else(|| common::malformed_payload(PROVIDER, "no message"))?;
    let message_id = common::id_text(message.get("messageId"))
        .or_else(|| common::id_text(message.get("message_id")))
        .ok_or_else(|| common::malformed_payload(PROVIDER, "message has no messageId"))?;
    let data = message
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| common::malformed_payload(PROVIDER, "message has no data"))?;
    let data = BASE64
        .decode(data)
        .map_err(|_| common::malformed_payload(PROVIDER, "message data is not base64"))?;
    let data: Value = serde_json::from_slice(&data)
        .map_err(|_| common::malformed_payload(PROVIDER, "message data is not JSON"))?;
    let email_address = common::text(data.get("emailAddress"))
        .ok_or_else(|| common::malformed_payload(PROVIDER, "message data has no emailAddress"))?;
    let history_id = common::id_text(data.get("historyId"))
        .ok_or_else(|| common::malformed_payload(PROVIDER, "message data has no historyId"))?;
    let publish_time = message
        .get("publishTime")
        .or_else(|| message.get("publish_time"));
    Ok(vec![VerifiedEvent {
        provider: PROVIDER,
        dedupe_key: format!("gmail:{message_id}"),
        account_id: Some(email_address.clone()),
        event_type: "mailbox_changed".to_owned(),
        object_type: None,
        object_id: None,
        occurred_at: common::rfc3339(publish_time),
        payload: json!({
            "emailAddress": email_address,
            "historyId": history_id,
            "messageId": message_id,
            "publishTime": publish_time,
            "subscription": push.get("subscription"),
        }),
    }])
}

#[cfg(test)]
mod tests;
