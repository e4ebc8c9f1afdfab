//! OAuth2 through the `oauth2` crate: authorization URLs with `state` and PKCE (S256) where the
//! provider accepts it, code exchange, refresh (keeping the refresh token, or replacing it where the
//! provider rotates it), and revocation where the provider has one. A token response without
//! `expires_in` gets the provider's documented lifetime, never "never expires" unless the provider
//! says so. Failures are classified: re-authorize, retry later, or misconfigured.

use std::fmt;

use chrono::{DateTime, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardErrorResponse, StandardRevocableToken, StandardTokenResponse,
    TokenResponse as _, TokenUrl,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dispatch::dispatch;
use crate::{HttpCore, Keyring, ProviderError, ProviderKind, ProviderSpec, SealedSecret};

/// Token-response fields beyond the standard ones, kept as they came; only the allow-listed,
/// non-secret ones reach [`TokenSet::metadata`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraFields {
    #[serde(flatten)]
    fields: Map<String, Value>,
}

impl ExtraTokenFields for ExtraFields {}

type TokenResponse = StandardTokenResponse<ExtraFields, BasicTokenType>;
type NewClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;
type Client = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Token-response fields that identify the account and are safe to store in plain text: Salesforce's
/// `instance_url` and identity `id`, HubSpot's `hub_id`, Stripe's `stripe_user_id`, …
const METADATA_FIELDS: &[&str] = &[
    "instance_url",
    "id",
    "issued_at",
    "hub_id",
    "hub_domain",
    "user_id",
    "app_id",
    "stripe_user_id",
    "livemode",
];

/// The platform's OAuth app at one provider.
#[derive(Clone)]
pub struct OAuthCredentials {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret (Stripe Connect: the platform's secret key).
    pub client_secret: SecretString,
    /// Where the provider sends the user back (`PUBLIC_BASE_URL` + `/oauth/callback`).
    pub redirect_uri: String,
}

impl fmt::Debug for OAuthCredentials {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OAuthCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// Where to send the user, and what to keep until they come back.
#[derive(Debug)]
pub struct AuthorizationRequest {
    /// The provider's authorization URL with every parameter.
    pub url: String,
    /// The single-use `state` to match on the callback.
    pub state: SecretString,
    /// The PKCE verifier to send with the code, where the provider uses PKCE.
    pub pkce_verifier: Option<SecretString>,
}

/// A connection's tokens and what the token response said about the account.
#[derive(Clone)]
pub struct TokenSet {
    /// The bearer token.
    pub access_token: SecretString,
    /// The refresh token, where the provider issues one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires; `None` only for tokens documented never to expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// Scopes granted, when the provider says.
    pub scopes: Vec<String>,
    /// Non-secret account facts from the token response (`instance_url`, `hub_id`, …).
    pub metadata: Map<String, Value>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// The stored form of a [`TokenSet`], only ever written sealed.
#[derive(Serialize, Deserialize)]
struct StoredTokens {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    scopes: Vec<String>,
    metadata: Map<String, Value>,
}

impl TokenSet {
    /// Whether the access token expires within `margin` of `now` (refresh ahead of expiry).
    pub fn expires_within(&self, now: DateTime<Utc>, margin: chrono::Duration) -> bool {
        self.expires_at
            .is_some_and(|expires_at| expires_at - margin <= now)
    }

    /// Seals the tokens for storage, bound to `associated_data`.
    pub fn seal(
        &self,
        keyring: &Keyring,
        associated_data: &[u8],
    ) -> Result<SealedSecret, crate::SealingError> {
        let stored = StoredTokens {
            access_token: self.access_token.expose_secret().to_owned(),
            refresh_token: self
                .refresh_token
                .as_ref()
                .map(|token| token.expose_secret().to_owned()),
            expires_at: self.expires_at,
            scopes: self.scopes.clone(),
            metadata: self.metadata.clone(),
        };
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&stored).unwrap_or_default());
        drop(zeroize::Zeroizing::new(stored.access_token));
        drop(stored.refresh_token.map(zeroize::Zeroizing::new));
        keyring.seal(&json, associated_data)
    }

    /// Opens tokens sealed by [`TokenSet::seal`] with the same associated data.
    pub fn open(
        keyring: &Keyring,
        sealed: &SealedSecret,
        associated_data: &[u8],
    ) -> Result<Self, crate::SealingError> {
        let json = keyring.open(sealed, associated_data)?;
        let stored: StoredTokens = serde_json::from_slice(json.expose_secret())
            .map_err(|_| crate::SealingError::Malformed("sealed tokens are not a token set"))?;
        Ok(Self {
            access_token: SecretString::from(stored.access_token),
            refresh_token: stored.refresh_token.map(SecretString::from),
            expires_at: stored.expires_at,
            scopes: stored.scopes,
            metadata: stored.metadata,
        })
    }
}

/// What revoking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The provider revoked the grant (or already had).
    Revoked,
    /// The provider has no revocation endpoint (Intercom: the user uninstalls the app).
    NotSupported,
}

/// OAuth2 against one provider for one platform app.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    spec: ProviderSpec,
    credentials: OAuthCredentials,
    http: HttpCore,
}

impl OAuthClient {
    /// A client for `spec` (already resolved for the connection: subdomain, sandbox) and the app's
    /// `credentials`, over `http`.
    pub fn new(
        spec: ProviderSpec,
        credentials: OAuthCredentials,
        http: HttpCore,
    ) -> Result<Self, ProviderError> {
        let this = Self {
            spec,
            credentials,
            http,
        };
        this.client()?;
        Ok(this)
    }

    fn provider(&self) -> ProviderKind {
        self.spec.kind
    }

    /// Where the provider sends the user back.
    pub fn redirect_uri(&self) -> &str {
        &self.credentials.redirect_uri
    }

    fn misconfigured(&self, reason: String) -> ProviderError {
        ProviderError::Misconfigured {
            provider: self.provider(),
            reason,
        }
    }

    fn client(&self) -> Result<Client, ProviderError> {
        let auth_url = AuthUrl::new(self.spec.authorize_url.clone())
            .map_err(|error| self.misconfigured(format!("authorization URL: {error}")))?;
        let token_url = TokenUrl::new(self.spec.token_url.clone())
            .map_err(|error| self.misconfigured(format!("token URL: {error}")))?;
        let redirect_url = RedirectUrl::new(self.credentials.redirect_uri.clone())
            .map_err(|error| self.misconfigured(format!("redirect URI: {error}")))?;
        Ok(
            NewClient::new(ClientId::new(self.credentials.client_id.clone()))
                .set_client_secret(ClientSecret::new(
                    self.credentials.client_secret.expose_secret().to_owned(),
                ))
                .set_auth_uri(auth_url)
                .set_token_uri(token_url)
                .set_redirect_uri(redirect_url)
                // Every one of the six accepts (HubSpot requires) client credentials in the body.
                .set_auth_type(AuthType::RequestBody),
        )
    }

    /// The authorization URL with a fresh `state`, the provider's scopes and extra parameters,
    /// and a PKCE S256 challenge where the provider supports PKCE.
    pub fn authorization_request(&self) -> Result<AuthorizationRequest, ProviderError> {
        let client = self.client()?;
        let mut request = client.authorize_url(CsrfToken::new_random);
        for scope in &self.spec.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        for (name, value) in &self.spec.extra_authorize_params {
            request = request.add_extra_param(name.as_str(), value.as_str());
        }
        let pkce_verifier = if self.spec.pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            Some(SecretString::from(verifier.into_secret()))
        } else {
            None
        };
        let (url, state) = request.url();
        Ok(AuthorizationRequest {
            url: url.to_string(),
            state: SecretString::from(state.into_secret()),
            pkce_verifier,
        })
    }

    /// Exchanges the callback's `code` (with the PKCE verifier kept from the authorization request)
    /// for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: Option<&SecretString>,
    ) -> Result<TokenSet, ProviderError> {
        let client = self.client()?;
        let mut request = client.exchange_code(AuthorizationCode::new(code.to_owned()));
        if let Some(verifier) = pkce_verifier {
            request = request
                .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()));
        }
        let send = self.transport();
        let response = request
            .request_async(&send)
            .await
            .map_err(|error| self.classify(error))?;
        Ok(self.token_set(&response, None))
    }

    /// Refreshes `current`'s access token. Where the provider rotates refresh tokens the new one
    /// replaces the old; where it sends none, the old one is kept.
    pub async fn refresh(&self, current: &TokenSet) -> Result<TokenSet, ProviderError> {
        let Some(refresh_token) = current.refresh_token.as_ref() else {
            return Err(self.misconfigured(format!(
                "{} issued no refresh token for this connection",
                self.provider()
            )));
        };
        let client = self.client()?;
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let send = self.transport();
        let response = client
            .exchange_refresh_token(&token)
            .request_async(&send)
            .await
            .map_err(|error| self.classify(error))?;
        let mut refreshed = self.token_set(&response, Some(refresh_token));
        // Salesforce's refresh response omits instance_url when unchanged; keep what we knew.
        for (key, value) in &current.metadata {
            refreshed
                .metadata
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        Ok(refreshed)
    }

    /// Revokes the grant at the provider where it can be revoked.
    pub async fn revoke(&self, tokens: &TokenSet) -> Result<Revocation, ProviderError> {
        let Some(revoke_url) = self.spec.revoke_url.clone() else {
            return Ok(Revocation::NotSupported);
        };
        let built = dispatch!(self.provider(), adapter => adapter.revoke_request(
            self.http.client(),
            revoke_url,
            tokens,
            &self.credentials,
        ))?;
        let Some(request) = built else {
            return Ok(Revocation::NotSupported);
        };
        let request = request
            .build()
            .map_err(|error| self.misconfigured(format!("revocation request: {error}")))?;
        let response = self
            .http
            .send_accepting(request, |status| (200..500).contains(&status))
            .await?;
        match response.status {
            200..=299 => Ok(Revocation::Revoked),
            // Already revoked or expired: the goal is reached.
            400 | 401 | 404 => Ok(Revocation::Revoked),
            status => Err(ProviderError::Rejected {
                provider: self.provider(),
                status,
                message: ProviderError::short(&String::from_utf8_lossy(&response.body)),
            }),
        }
    }

    /// The `oauth2` crate's HTTP client: our [`HttpCore`], which retries 429/5xx and returns 4xx
    /// token-endpoint answers for the crate to parse.
    fn transport(
        &self,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<oauth2::HttpResponse, ProviderError>> + Send>,
    > {
        let http = self.http.clone();
        move |request: oauth2::HttpRequest| {
            let http = http.clone();
            Box::pin(async move {
                let provider = http.provider();
                let request = reqwest::Request::try_from(request).map_err(|error| {
                    ProviderError::Misconfigured {
                        provider,
                        reason: format!("token request: {error}"),
                    }
                })?;
                let response = http
                    .send_accepting(request, |status| (200..500).contains(&status))
                    .await?;
                let mut builder = http::Response::builder().status(response.status);
                for (name, value) in &response.headers {
                    builder = builder.header(name, value);
                }
                builder
                    .body(response.body)
                    .map_err(|error| ProviderError::Decode {
                        provider,
                        what: "token response".to_owned(),
                        reason: error.to_string(),
                    })
            })
        }
    }

    fn classify(
        &self,
        error: RequestTokenError<ProviderError, StandardErrorResponse<BasicErrorResponseType>>,
    ) -> ProviderError {
        let provider = self.provider();
        match error {
            RequestTokenError::ServerResponse(response) => {
                let code = response.error().as_ref().to_owned();
                let description = response
                    .error_description()
                    .map(|text| ProviderError::short(text))
                    .unwrap_or_default();
                let reason = if description.is_empty() {
                    code.clone()
                } else {
                    format!("{code}: {description}")
                };
                match response.error() {
                    BasicErrorResponseType::InvalidGrant => {
                        ProviderError::Reauthorize { provider, reason }
                    }
                    BasicErrorResponseType::InvalidClient
                    | BasicErrorResponseType::UnauthorizedClient => {
                        ProviderError::Misconfigured { provider, reason }
                    }
                    _ => ProviderError::Rejected {
                        provider,
                        status: 400,
                        message: reason,
                    },
                }
            }
            RequestTokenError::Request(error) => error,
            // The body may hold tokens: report the parse error only.
            RequestTokenError::Parse(error, _body) => ProviderError::Decode {
                provider,
                what: "token response".to_owned(),
                reason: error.to_string(),
            },
            RequestTokenError::Other(reason) => ProviderError::Decode {
                provider,
                what: "token response".to_owned(),
                reason,
            },
        }
    }

    fn token_set(
        &self,
        response: &TokenResponse,
        previous_refresh: Option<&SecretString>,
    ) -> TokenSet {
        let now = self.http.now();
        let lifetime = response.expires_in().or(self.spec.default_token_lifetime);
        let expires_at = lifetime
            .and_then(|lifetime| chrono::Duration::from_std(lifetime).ok())
            .map(|lifetime| now + lifetime);
        let refresh_token = response
            .refresh_token()
            .map(|token| SecretString::from(token.secret().to_owned()))
            .or_else(|| previous_refresh.cloned());
        let scopes = response
            .scopes()
            .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect())
            .unwrap_or_default();
        let metadata = response
            .extra_fields()
            .fields
            .iter()
            .filter(|(key, _)| METADATA_FIELDS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        TokenSet {
            access_token: SecretString::from(response.access_token().secret().to_owned()),
            refresh_token,
            expires_at,
            scopes,
            metadata,
        }
    }
}

#[cfg(test)]
mod tests;
