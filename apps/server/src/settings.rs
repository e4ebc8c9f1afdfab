//! Typed settings read from the environment; the only place the platform reads environment
//! variables. Development keys are generated under `data/dev-keys/` when production keys are absent.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use providers::secrecy::{ExposeSecret as _, SecretString};
use providers::{Keyring, ProviderKind, SealingKey};

/// Where the embedded default keeps its generated development keys.
pub const DEV_KEYS_DIR: &str = "data/dev-keys";

/// Google's OIDC signing keys, which sign Pub/Sub push tokens.
pub const GOOGLE_OIDC_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// The shortest `AUTH_JWT_SECRET` production accepts (HS256 wants a key as long as its hash).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Which environment the server runs in (`APP_ENV`: `development` or `production`, any case;
/// unset is development, anything else refuses to start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Development keys may be generated; GraphiQL and introspection are on; any loopback origin
    /// may call the API.
    Development,
    /// Every key must be configured; GraphiQL and introspection are off unless set.
    Production,
}

/// How logs are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line (`LOG_FORMAT=json`).
    Json,
}

/// One provider's `PROVIDER_*` variables.
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    /// `PROVIDER_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `PROVIDER_CLIENT_SECRET`.
    pub client_secret: Option<SecretString>,
    /// `PROVIDER_WEBHOOK_SECRET` (Stripe Connect's endpoint secret, for instance).
    pub webhook_secret: Option<SecretString>,
    /// `PROVIDER_SYNC_SCHEDULE`, a 5-field cron expression; the engine's default when unset.
    pub sync_schedule: Option<String>,
    /// `PROVIDER_API_BASE_URL`: a sandbox or a local mock instead of the provider's API.
    pub api_base_url: Option<String>,
    /// `PROVIDER_AUTH_BASE_URL`: a sandbox or a local mock instead of the provider's OAuth server.
    pub auth_base_url: Option<String>,
}

/// The server's configuration.
#[derive(Clone)]
pub struct Settings {
    /// `DATABASE_URL`; the embedded SQLite file under `data/` when unset. On PostgreSQL the
    /// owner's, for `just migrate`; the server uses it only where the next two are unset.
    pub database_url: String,
    /// `API_DATABASE_URL`: the GraphQL requests' login role (`platform_api`), PostgreSQL only.
    pub api_database_url: Option<String>,
    /// `WORKER_DATABASE_URL`: background work, webhooks, the OAuth callback and mutations after
    /// their checks (`platform_worker`), PostgreSQL only.
    pub worker_database_url: Option<String>,
    /// `BIND_ADDR`, default `127.0.0.1:8080`.
    pub bind_addr: SocketAddr,
    /// `DATABASE_POOL_SIZE`, default 10.
    pub database_pool_size: u32,
    /// `PUBLIC_BASE_URL` without a trailing slash, default `http://{BIND_ADDR}`: the origin
    /// providers call (OAuth redirects, webhooks).
    pub public_base_url: String,
    /// `APP_URL`, default `PUBLIC_BASE_URL`: where the OAuth callback sends the user back.
    pub app_url: String,
    /// `AUTH_JWT_SECRET` (HS256); `None` until [`Settings::with_dev_keys`] fills it in development.
    pub auth_jwt_secret: Option<SecretString>,
    /// `TOKEN_ENCRYPTION_KEYS` (`kid:base64[,…]`, checked to parse); `None` until
    /// [`Settings::with_dev_keys`] fills it in development.
    pub token_encryption_keys: Option<SecretString>,
    /// `SYNC_ON_STARTUP`, default false.
    pub sync_on_startup: bool,
    /// `BACKGROUND_WORKERS`: job workers in this process; default 4 on PostgreSQL, 1 on SQLite
    /// (which never runs more than one). `0` runs no worker and no scheduler: an API-only process.
    pub background_workers: Option<u32>,
    /// `APP_ENV`.
    pub app_env: AppEnv,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// The `PROVIDER_*` variables of every provider, in [`ProviderKind::ALL`] order.
    pub providers: Vec<(ProviderKind, ProviderSettings)>,
    /// `GMAIL_PUBSUB_AUDIENCE`, default `PUBLIC_BASE_URL` + `/webhooks/gmail`.
    pub gmail_pubsub_audience: String,
    /// `GMAIL_PUBSUB_SERVICE_ACCOUNT`: the `email` claim Gmail push tokens must carry; Gmail push
    /// is refused while it is unset.
    pub gmail_pubsub_service_account: Option<String>,
    /// `GOOGLE_OIDC_CERTS_URL`: an `http(s)` URL or a file path holding the JWKS.
    pub google_oidc_certs_url: String,
    /// `AUTH_JWKS_URL`: RS256/ES256 signing keys of the identity provider (an `http(s)` URL or a
    /// file path).
    pub auth_jwks_url: Option<String>,
    /// `AUTH_JWT_AUDIENCE` (comma list; `authenticated` for Supabase): unchecked when empty.
    pub auth_jwt_audience: Vec<String>,
    /// `AUTH_JWT_ISSUER`: unchecked when unset.
    pub auth_jwt_issuer: Option<String>,
    /// `AUTH_JWT_LEEWAY_SECONDS`, default and at most 30.
    pub auth_jwt_leeway: Duration,
    /// `CORS_ALLOWED_ORIGINS` (comma list of origins); in development every `http://localhost:*`
    /// and `http://127.0.0.1:*` origin is allowed besides.
    pub cors_allowed_origins: Vec<String>,
    /// `GRAPHQL_INTROSPECTION`: default on in development, off in production.
    pub graphql_introspection: bool,
    /// `GRAPHIQL`: default on in development, off in production.
    pub graphiql: bool,
    /// `RATE_LIMIT_PER_IP`: `/graphql` requests per second per client address (burst twice
    /// that), default 100; 0 turns it off.
    pub rate_limit_per_ip: u32,
    /// `RATE_LIMIT_PER_USER`: GraphQL requests per second per signed-in user, default 50.
    pub rate_limit_per_user: u32,
    /// `RATE_LIMIT_WEBHOOKS`: deliveries per second per webhook endpoint, default 1,000.
    pub rate_limit_webhooks: u32,
    /// `SHUTDOWN_GRACE` (seconds, default 10): after SIGTERM, how long running jobs get to reach
    /// their next stopping point (a sync: its next page boundary) before the process exits.
    pub shutdown_grace: Duration,
    /// `SYNC_REQUEST_BUDGET`: API calls one sync run may make (default 100,000; at least 1).
    pub sync_request_budget: u64,
    /// `SYNC_SLICE_PAGES` (default 20, 1–100,000) and `SYNC_SLICE_SECONDS` (default 10, 1–3,600):
    /// a sync job yields its worker after that many pages or seconds, whichever comes first, and
    /// its next slice waits behind the jobs already due.
    pub sync_slice: integrations::SyncSlice,
    /// `SYNC_PAGES_IN_FLIGHT` (default 3, 1–16): pages of one sync written at once on
    /// PostgreSQL; fewer leave more of the database to other workspaces during a large load.
    pub sync_pages_in_flight: u32,
    /// `SYNC_ANALYZE_EVERY_ROWS`: entities syncs create between two `ANALYZE`s of the tables they
    /// grow (PostgreSQL; default 50,000; 0 never analyzes).
    pub sync_analyze_every_rows: u64,
    /// `ATTRIBUTE_HISTORY_DAYS`: how long attribute history is kept (default 90; at least 1).
    pub attribute_history_days: i64,
    /// `METRICS_BIND_ADDR`: serve `/metrics` on this address only (not on `BIND_ADDR`).
    pub metrics_bind_addr: Option<SocketAddr>,
    /// `METRICS_TOKEN`: `/metrics` answers only `Authorization: Bearer <this>`.
    pub metrics_token: Option<SecretString>,
    /// `CLIENT_IP_HEADER`: the header a trusted proxy sets to the client's address
    /// (`X-Forwarded-For`: its last entry); unset, the socket's peer is the client.
    pub client_ip_header: Option<String>,
    /// True when [`Settings::with_dev_keys`] supplied a generated key.
    pub uses_dev_keys: bool,
}

impl fmt::Debug for Settings {
    /// Secrets print as redacted (the `secrecy` types do that) and so does the database password.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Settings")
            .field("database_url", &redact_url_password(&self.database_url))
            .field(
                "api_database_url",
                &self.api_database_url.as_deref().map(redact_url_password),
            )
            .field(
                "worker_database_url",
                &self.worker_database_url.as_deref().map(redact_url_password),
            )
            .field("bind_addr", &self.bind_addr)
            .field("database_pool_size", &self.database_pool_size)
            .field("public_base_url", &self.public_base_url)
            .field("app_url", &self.app_url)
            .field("auth_jwt_secret", &self.auth_jwt_secret)
            .field("token_encryption_keys", &self.token_encryption_keys)
            .field("sync_on_startup", &self.sync_on_startup)
            .field("background_workers", &self.background_workers)
            .field("app_env", &self.app_env)
            .field("log_format", &self.log_format)
            .field("providers", &self.providers)
            .field("gmail_pubsub_audience", &self.gmail_pubsub_audience)
            .field(
                "gmail_pubsub_service_account",
                &self.gmail_pubsub_service_account,
            )
            .field("google_oidc_certs_url", &self.google_oidc_certs_url)
            .field("auth_jwks_url", &self.auth_jwks_url)
            .field("auth_jwt_audience", &self.auth_jwt_audience)
            .field("auth_jwt_issuer", &self.auth_jwt_issuer)
            .field("auth_jwt_leeway", &self.auth_jwt_leeway)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("graphql_introspection", &self.graphql_introspection)
            .field("graphiql", &self.graphiql)
            .field("rate_limit_per_ip", &self.rate_limit_per_ip)
            .field("rate_limit_per_user", &self.rate_limit_per_user)
            .field("rate_limit_webhooks", &self.rate_limit_webhooks)
            .field("client_ip_header", &self.client_ip_header)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("sync_request_budget", &self.sync_request_budget)
            .field("sync_slice", &self.sync_slice)
            .field("sync_pages_in_flight", &self.sync_pages_in_flight)
            .field("sync_analyze_every_rows", &self.sync_analyze_every_rows)
            .field("attribute_history_days", &self.attribute_history_days)
            .field("metrics_bind_addr", &self.metrics_bind_addr)
            .field("metrics_token", &self.metrics_token)
            .field("uses_dev_keys", &self.uses_dev_keys)
            .finish()
    }
}

fn redact_url_password(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("[REDACTED]"));
            parsed.to_string()
        }
        _ => database_url.to_owned(),
    }
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The variable holds a value of the wrong shape.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The environment variable.
        name: &'static str,
        /// What is wrong with it (never the value of a secret).
        reason: String,
    },
    /// `APP_ENV=production` and variables it requires are unset.
    #[error("APP_ENV=production requires {}, which {} unset", names.join(", "), if names.len() == 1 { "is" } else { "are" })]
    MissingInProduction {
        /// The unset variables.
        names: Vec<&'static str>,
    },
    /// A development key could not be read or written.
    #[error("development key {}: {reason}", path.display())]
    DevKey {
        /// The key file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// The `PROVIDER` part of a provider's variables.
pub fn env_prefix(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::HubSpot => "HUBSPOT",
        ProviderKind::Salesforce => "SALESFORCE",
        ProviderKind::Stripe => "STRIPE",
        ProviderKind::Zendesk => "ZENDESK",
        ProviderKind::Intercom => "INTERCOM",
        ProviderKind::Gmail => "GMAIL",
    }
}

impl Settings {
    /// Reads the settings from the process environment (without dev keys; see
    /// [`Settings::with_dev_keys`]).
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    /// Empty values count as unset. With `APP_ENV=production`, refuses to return without
    /// `DATABASE_URL`, `AUTH_JWT_SECRET` and `TOKEN_ENCRYPTION_KEYS`, naming every missing one.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let app_env = match get("APP_ENV").map(|value| value.trim().to_ascii_lowercase()) {
            None => AppEnv::Development,
            Some(value) if value == "development" => AppEnv::Development,
            Some(value) if value == "production" => AppEnv::Production,
            Some(value) => {
                return Err(SettingsError::Invalid {
                    name: "APP_ENV",
                    reason: format!("`{value}` is neither `development` nor `production`"),
                });
            }
        };
        if app_env == AppEnv::Production {
            let mut names: Vec<&'static str> = Vec::new();
            if get("DATABASE_URL").is_none() {
                names.push("DATABASE_URL");
            }
            if get("AUTH_JWT_SECRET").is_none() && get("AUTH_JWKS_URL").is_none() {
                names.push("AUTH_JWT_SECRET");
            }
            if get("TOKEN_ENCRYPTION_KEYS").is_none() {
                names.push("TOKEN_ENCRYPTION_KEYS");
            }
            // On PostgreSQL the server runs as the least-privilege roles, never as the owner.
            if get("DATABASE_URL").is_some_and(|url| url.starts_with("postgres")) {
                for name in ["API_DATABASE_URL", "WORKER_DATABASE_URL"] {
                    if get(name).is_none() {
                        names.push(name);
                    }
                }
            }
            if !names.is_empty() {
                return Err(SettingsError::MissingInProduction { names });
            }
            if get("AUTH_JWT_SECRET").is_some_and(|secret| secret.len() < MIN_JWT_SECRET_BYTES) {
                return Err(SettingsError::Invalid {
                    name: "AUTH_JWT_SECRET",
                    reason: format!(
                        "shorter than {MIN_JWT_SECRET_BYTES} bytes, which production refuses"
                    ),
                });
            }
            if get("DATABASE_URL").is_some_and(|url| url.starts_with("sqlite:")) {
                return Err(SettingsError::Invalid {
                    name: "DATABASE_URL",
                    reason: "SQLite has no row-level security; production needs PostgreSQL"
                        .to_owned(),
                });
            }
        }
        let development = app_env == AppEnv::Development;
        let flag = |name: &'static str, default: bool| -> Result<bool, SettingsError> {
            match get(name) {
                None => Ok(default),
                Some(text) => parse_bool(&text).ok_or_else(|| SettingsError::Invalid {
                    name,
                    reason: format!("`{text}` is not true or false"),
                }),
            }
        };
        let graphql_introspection = flag("GRAPHQL_INTROSPECTION", development)?;
        let graphiql = flag("GRAPHIQL", development)?;
        let cors_allowed_origins = match get("CORS_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|origin| !origin.is_empty())
                .map(origin)
                .collect::<Result<_, _>>()?,
        };
        let rate = |name: &'static str, default: u32| -> Result<u32, SettingsError> {
            match get(name) {
                None => Ok(default),
                Some(text) => text.trim().parse().map_err(|_| SettingsError::Invalid {
                    name,
                    reason: format!("`{text}` is not a whole number of requests per second"),
                }),
            }
        };
        let rate_limit_per_ip = rate("RATE_LIMIT_PER_IP", 100)?;
        let rate_limit_per_user = rate("RATE_LIMIT_PER_USER", 50)?;
        let rate_limit_webhooks = rate("RATE_LIMIT_WEBHOOKS", 1_000)?;
        let client_ip_header = get("CLIENT_IP_HEADER")
            .map(|name| {
                axum::http::HeaderName::try_from(name.trim().to_ascii_lowercase())
                    .map(|header| header.as_str().to_owned())
                    .map_err(|_| SettingsError::Invalid {
                        name: "CLIENT_IP_HEADER",
                        reason: format!("`{name}` is not a header name"),
                    })
            })
            .transpose()?;
        let shutdown_grace = match get("SHUTDOWN_GRACE") {
            None => Duration::from_secs(10),
            Some(text) => {
                Duration::from_secs(text.trim().trim_end_matches('s').parse().map_err(|_| {
                    SettingsError::Invalid {
                        name: "SHUTDOWN_GRACE",
                        reason: format!("`{text}` is not a whole number of seconds"),
                    }
                })?)
            }
        };
        let sync_request_budget = match get("SYNC_REQUEST_BUDGET") {
            None => integrations::DEFAULT_SYNC_REQUEST_BUDGET,
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|calls| *calls >= 1)
                .ok_or_else(|| SettingsError::Invalid {
                    name: "SYNC_REQUEST_BUDGET",
                    reason: format!("`{text}` is not a whole number of calls of at least 1"),
                })?,
        };
        // A whole number from 1 to `max` of `unit`s, `default` when unset.
        let bounded_whole = |name: &'static str, default: u32, max: u32, unit: &str| match get(name)
        {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|value| (1..=max).contains(value))
                .ok_or_else(|| SettingsError::Invalid {
                    name,
                    reason: format!("`{text}` is not a whole number of {unit} from 1 to {max}"),
                }),
        };
        let sync_slice = integrations::SyncSlice {
            pages: bounded_whole(
                "SYNC_SLICE_PAGES",
                integrations::DEFAULT_SYNC_SLICE_PAGES,
                100_000,
                "pages",
            )?,
            time: chrono::Duration::seconds(i64::from(bounded_whole(
                "SYNC_SLICE_SECONDS",
                integrations::DEFAULT_SYNC_SLICE_SECONDS,
                3_600,
                "seconds",
            )?)),
        };
        let sync_pages_in_flight = bounded_whole(
            "SYNC_PAGES_IN_FLIGHT",
            u32::try_from(integrations::DEFAULT_PAGES_IN_FLIGHT).unwrap_or(1),
            16,
            "pages",
        )?;
        let sync_analyze_every_rows = match get("SYNC_ANALYZE_EVERY_ROWS") {
            None => integrations::DEFAULT_ANALYZE_EVERY_ROWS,
            Some(text) => {
                text.trim()
                    .parse::<u64>()
                    .ok()
                    .ok_or_else(|| SettingsError::Invalid {
                        name: "SYNC_ANALYZE_EVERY_ROWS",
                        reason: format!("`{text}` is not a whole number of rows (0 turns it off)"),
                    })?
            }
        };
        let attribute_history_days = match get("ATTRIBUTE_HISTORY_DAYS") {
            None => integrations::DEFAULT_ATTRIBUTE_HISTORY_DAYS,
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|days| (1..=36_500).contains(days))
                .ok_or_else(|| SettingsError::Invalid {
                    name: "ATTRIBUTE_HISTORY_DAYS",
                    reason: format!("`{text}` is not a whole number of days from 1 to 36500"),
                })?,
        };
        let metrics_bind_addr = get("METRICS_BIND_ADDR")
            .map(|text| {
                text.trim()
                    .parse::<SocketAddr>()
                    .map_err(|error| SettingsError::Invalid {
                        name: "METRICS_BIND_ADDR",
                        reason: error.to_string(),
                    })
            })
            .transpose()?;
        let auth_jwks_url = get("AUTH_JWKS_URL");
        if let Some(location) = &auth_jwks_url
            && location.contains("://")
        {
            base_url("AUTH_JWKS_URL", location.clone())?;
        }
        let auth_jwt_leeway = match get("AUTH_JWT_LEEWAY_SECONDS") {
            None => Duration::from_secs(30),
            Some(text) => match text.trim().parse::<u64>() {
                Ok(seconds) if seconds <= 30 => Duration::from_secs(seconds),
                _ => {
                    return Err(SettingsError::Invalid {
                        name: "AUTH_JWT_LEEWAY_SECONDS",
                        reason: format!("`{text}` is not a whole number of seconds from 0 to 30"),
                    });
                }
            },
        };
        let auth_jwt_audience = get("AUTH_JWT_AUDIENCE")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|audience| !audience.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let database_url =
            get("DATABASE_URL").unwrap_or_else(|| migration::DEFAULT_DATABASE_URL.to_owned());
        let bind_addr: SocketAddr = get("BIND_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
            .parse()
            .map_err(|error: std::net::AddrParseError| SettingsError::Invalid {
                name: "BIND_ADDR",
                reason: error.to_string(),
            })?;
        let database_pool_size = match get("DATABASE_POOL_SIZE") {
            None => 10,
            Some(text) => text.parse().map_err(|_| SettingsError::Invalid {
                name: "DATABASE_POOL_SIZE",
                reason: format!("`{text}` is not a whole number"),
            })?,
        };
        let public_base_url = base_url(
            "PUBLIC_BASE_URL",
            get("PUBLIC_BASE_URL").unwrap_or_else(|| format!("http://{bind_addr}")),
        )?;
        let app_url = base_url(
            "APP_URL",
            get("APP_URL").unwrap_or_else(|| public_base_url.clone()),
        )?;
        let token_encryption_keys = get("TOKEN_ENCRYPTION_KEYS").map(SecretString::from);
        if let Some(keys) = &token_encryption_keys {
            Keyring::parse(keys).map_err(|error| SettingsError::Invalid {
                name: "TOKEN_ENCRYPTION_KEYS",
                reason: error.to_string(),
            })?;
        }
        let sync_on_startup = flag("SYNC_ON_STARTUP", false)?;
        let background_workers = get("BACKGROUND_WORKERS")
            .map(|text| {
                text.parse().map_err(|_| SettingsError::Invalid {
                    name: "BACKGROUND_WORKERS",
                    reason: format!("`{text}` is not a whole number"),
                })
            })
            .transpose()?;
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("text" | "pretty") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(SettingsError::Invalid {
                    name: "LOG_FORMAT",
                    reason: format!("`{other}` is neither `text` nor `json`"),
                });
            }
        };
        let providers = ProviderKind::ALL
            .into_iter()
            .map(|kind| {
                let prefix = env_prefix(kind);
                let var = |suffix: &str| get(&format!("{prefix}_{suffix}"));
                let provider = ProviderSettings {
                    client_id: var("CLIENT_ID"),
                    client_secret: var("CLIENT_SECRET").map(SecretString::from),
                    webhook_secret: var("WEBHOOK_SECRET").map(SecretString::from),
                    sync_schedule: var("SYNC_SCHEDULE"),
                    api_base_url: var("API_BASE_URL"),
                    auth_base_url: var("AUTH_BASE_URL"),
                };
                (kind, provider)
            })
            .collect();
        Ok(Self {
            gmail_pubsub_audience: get("GMAIL_PUBSUB_AUDIENCE")
                .unwrap_or_else(|| format!("{public_base_url}/webhooks/gmail")),
            gmail_pubsub_service_account: get("GMAIL_PUBSUB_SERVICE_ACCOUNT"),
            google_oidc_certs_url: get("GOOGLE_OIDC_CERTS_URL")
                .unwrap_or_else(|| GOOGLE_OIDC_CERTS_URL.to_owned()),
            auth_jwks_url,
            auth_jwt_audience,
            auth_jwt_issuer: get("AUTH_JWT_ISSUER"),
            auth_jwt_leeway,
            cors_allowed_origins,
            graphql_introspection,
            graphiql,
            rate_limit_per_ip,
            rate_limit_per_user,
            rate_limit_webhooks,
            client_ip_header,
            metrics_bind_addr,
            shutdown_grace,
            sync_request_budget,
            sync_slice,
            sync_pages_in_flight,
            sync_analyze_every_rows,
            attribute_history_days,
            metrics_token: get("METRICS_TOKEN").map(SecretString::from),
            api_database_url: get("API_DATABASE_URL"),
            worker_database_url: get("WORKER_DATABASE_URL"),
            database_url,
            bind_addr,
            database_pool_size,
            public_base_url,
            app_url,
            auth_jwt_secret: get("AUTH_JWT_SECRET").map(SecretString::from),
            token_encryption_keys,
            sync_on_startup,
            background_workers,
            app_env,
            log_format,
            providers,
            uses_dev_keys: false,
        })
    }

    /// Fills an unset `AUTH_JWT_SECRET` or `TOKEN_ENCRYPTION_KEYS` with a development key kept in
    /// `dir` (generated on first use, reused afterwards) and warns loudly that it did. In
    /// production nothing is generated (those variables were required already).
    pub fn with_dev_keys(mut self, dir: &Path) -> Result<Self, SettingsError> {
        if self.app_env == AppEnv::Production {
            return Ok(self);
        }
        if self.auth_jwt_secret.is_none() {
            let path = dir.join("auth_jwt_secret");
            let secret = read_or_create(&path, || {
                // 32 random bytes from the same generator as sealing keys, as base64.
                let key = generate_key("jwt", &path)?;
                let spec = key.to_spec();
                Ok(spec.expose_secret().trim_start_matches("jwt:").to_owned())
            })?;
            tracing::warn!(path = %path.display(), "AUTH_JWT_SECRET is unset: using a generated DEVELOPMENT secret; set it before production");
            self.auth_jwt_secret = Some(secret);
            self.uses_dev_keys = true;
        }
        if self.token_encryption_keys.is_none() {
            let path = dir.join("token_encryption_keys");
            let keys = read_or_create(&path, || {
                let key = generate_key("dev1", &path)?;
                Ok(key.to_spec().expose_secret().to_owned())
            })?;
            Keyring::parse(&keys).map_err(|error| SettingsError::DevKey {
                path: path.clone(),
                reason: error.to_string(),
            })?;
            tracing::warn!(path = %path.display(), "TOKEN_ENCRYPTION_KEYS is unset: sealing tokens with a generated DEVELOPMENT key; set it before production");
            self.token_encryption_keys = Some(keys);
            self.uses_dev_keys = true;
        }
        Ok(self)
    }

    /// The rate limits these settings ask for.
    pub fn rate_limits(&self) -> crate::limits::RateLimits {
        use crate::limits::Limit;
        crate::limits::RateLimits {
            per_ip: Limit::per_second(self.rate_limit_per_ip),
            per_user: Limit::per_second(self.rate_limit_per_user),
            per_webhook_endpoint: Limit::per_second(self.rate_limit_webhooks),
            client_ip_header: self
                .client_ip_header
                .as_deref()
                .and_then(|name| axum::http::HeaderName::try_from(name).ok()),
        }
    }

    /// How bearer tokens are checked.
    pub fn auth(&self) -> crate::graphql::auth::AuthSettings {
        crate::graphql::auth::AuthSettings {
            hs256_secret: self.auth_jwt_secret.clone(),
            jwks_url: self.auth_jwks_url.clone(),
            audience: self.auth_jwt_audience.clone(),
            issuer: self.auth_jwt_issuer.clone(),
            leeway: self.auth_jwt_leeway,
            ..crate::graphql::auth::AuthSettings::default()
        }
    }

    /// True when the database is SQLite (the embedded default or another file).
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// The `PROVIDER_*` settings of `kind`.
    pub fn provider(&self, kind: ProviderKind) -> Option<&ProviderSettings> {
        self.providers
            .iter()
            .find(|(candidate, _)| *candidate == kind)
            .map(|(_, provider)| provider)
    }

    /// The OAuth redirect URI registered with every provider.
    pub fn oauth_redirect_uri(&self) -> String {
        format!("{}/oauth/callback", self.public_base_url)
    }

    /// The keyring sealing credentials, from `TOKEN_ENCRYPTION_KEYS`.
    pub fn keyring(&self) -> Result<Keyring, SettingsError> {
        let keys = self
            .token_encryption_keys
            .as_ref()
            .ok_or(SettingsError::Invalid {
                name: "TOKEN_ENCRYPTION_KEYS",
                reason: "unset (call Settings::with_dev_keys in development)".to_owned(),
            })?;
        Keyring::parse(keys).map_err(|error| SettingsError::Invalid {
            name: "TOKEN_ENCRYPTION_KEYS",
            reason: error.to_string(),
        })
    }

    /// The cron schedule of every provider that has one, for the scheduler.
    pub fn sync_schedules(&self) -> Vec<(ProviderKind, String)> {
        self.providers
            .iter()
            .filter_map(|(kind, provider)| {
                provider
                    .sync_schedule
                    .clone()
                    .map(|schedule| (*kind, schedule))
            })
            .collect()
    }
}

/// `true`/`false` (any case), `1`/`0`, `yes`/`no`, `on`/`off`.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// One `CORS_ALLOWED_ORIGINS` entry as the origin a browser sends (`scheme://host[:port]`).
fn origin(text: &str) -> Result<String, SettingsError> {
    let invalid = |reason: String| SettingsError::Invalid {
        name: "CORS_ALLOWED_ORIGINS",
        reason,
    };
    let parsed = url::Url::parse(text).map_err(|error| invalid(format!("`{text}`: {error}")))?;
    let bare = parsed.path() == "/" && parsed.query().is_none() && parsed.fragment().is_none();
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || !bare
        || !parsed.username().is_empty()
        || text.trim_end_matches('/').matches('/').count() != 2
    {
        return Err(invalid(format!(
            "`{text}` is not an origin like https://app.example.com or http://localhost:5173"
        )));
    }
    Ok(parsed.origin().ascii_serialization())
}

fn base_url(name: &'static str, value: String) -> Result<String, SettingsError> {
    let parsed = url::Url::parse(&value).map_err(|error| SettingsError::Invalid {
        name,
        reason: error.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SettingsError::Invalid {
            name,
            reason: "not an http(s) URL".to_owned(),
        });
    }
    Ok(value.trim_end_matches('/').to_owned())
}

fn generate_key(id: &str, path: &Path) -> Result<SealingKey, SettingsError> {
    SealingKey::generate(id).map_err(|error| SettingsError::DevKey {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

/// The secret in `path`, or a new one from `create` written there first (owner-only on Unix).
fn read_or_create(
    path: &Path,
    create: impl FnOnce() -> Result<String, SettingsError>,
) -> Result<SecretString, SettingsError> {
    let failed = |error: std::io::Error| SettingsError::DevKey {
        path: path.to_owned(),
        reason: error.to_string(),
    };
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(SecretString::from(text.trim())),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(failed(error)),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let secret = create()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(failed)?;
    std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(failed)?;
    tracing::warn!(path = %path.display(), "generated a DEVELOPMENT key; never use it in production");
    Ok(SecretString::from(secret))
}
