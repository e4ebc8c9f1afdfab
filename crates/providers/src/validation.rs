//! Connection validation: each provider's documented account-info call, reduced to an
//! [`AccountInfo`] of allow-listed, non-secret facts.

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value};

use crate::client::{AccountInfo, ProviderClient};
use crate::{ProviderError, ProviderKind};

/// The call, the field holding the account id, the field holding the display name, and the
/// fields worth keeping, per provider (JSON pointers).
struct Probe {
    path: &'static str,
    account_id: &'static str,
    display_name: &'static [&'static str],
    details: &'static [(&'static str, &'static str)],
}

fn probe(kind: ProviderKind) -> Probe {
    match kind {
        ProviderKind::HubSpot => Probe {
            path: "/account-info/v3/details",
            account_id: "/portalId",
            display_name: &["/uiDomain"],
            details: &[
                ("account_type", "/accountType"),
                ("time_zone", "/timeZone"),
                ("currency", "/companyCurrency"),
                ("data_hosting_location", "/dataHostingLocation"),
            ],
        },
        ProviderKind::Salesforce => Probe {
            path: "/services/oauth2/userinfo",
            account_id: "/organization_id",
            display_name: &["/name", "/preferred_username"],
            details: &[
                ("user_id", "/user_id"),
                ("username", "/preferred_username"),
                ("locale", "/locale"),
                ("time_zone", "/zoneinfo"),
            ],
        },
        ProviderKind::Stripe => Probe {
            path: "/v1/account",
            account_id: "/id",
            display_name: &["/settings/dashboard/display_name", "/business_profile/name"],
            details: &[
                ("country", "/country"),
                ("default_currency", "/default_currency"),
                ("charges_enabled", "/charges_enabled"),
                ("type", "/type"),
            ],
        },
        ProviderKind::Zendesk => Probe {
            path: "/api/v2/users/me.json",
            account_id: "/user/url",
            display_name: &["/user/name"],
            details: &[
                ("user_id", "/user/id"),
                ("role", "/user/role"),
                ("time_zone", "/user/iana_time_zone"),
            ],
        },
        ProviderKind::Intercom => Probe {
            path: "/me",
            account_id: "/app/id_code",
            display_name: &["/app/name"],
            details: &[
                ("region", "/app/region"),
                ("time_zone", "/app/timezone"),
                ("admin_id", "/id"),
            ],
        },
        ProviderKind::Gmail => Probe {
            path: "/gmail/v1/users/me/profile",
            account_id: "/emailAddress",
            display_name: &["/emailAddress"],
            details: &[
                ("history_id", "/historyId"),
                ("messages_total", "/messagesTotal"),
            ],
        },
    }
}

/// The detail keys of `kind`'s validation.
pub(crate) fn detail_keys(kind: ProviderKind) -> Vec<&'static str> {
    probe(kind).details.iter().map(|(name, _)| *name).collect()
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Salesforce's identity service (the token response's `id` URL): the user and org with their
/// names, which `userinfo` lacks.
const SALESFORCE_IDENTITY: Probe = Probe {
    path: "identity URL",
    account_id: "/organization_id",
    display_name: &["/display_name", "/username"],
    details: &[
        ("user_id", "/user_id"),
        ("username", "/username"),
        ("locale", "/locale"),
        ("time_zone", "/timezone"),
    ],
};

/// Whether `url` may receive the token as Salesforce's identity URL: `https` on a Salesforce host,
/// or the API's own host (a sandbox's or a test's instance).
fn trusted_identity_url(client: &ProviderClient, url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let api_host = url::Url::parse(client.api_base_url())
        .ok()
        .and_then(|api| api.host_str().map(str::to_ascii_lowercase));
    let salesforce = url.scheme() == "https"
        && [".salesforce.com", ".force.com"]
            .iter()
            .any(|suffix| host.ends_with(suffix));
    salesforce || api_host.as_deref() == Some(host.as_str())
}

/// Calls the provider's account-info endpoint (for Salesforce, the identity URL when the client
/// has one, else `userinfo`) and keeps only what [`Probe`] allows.
pub(crate) async fn validate(client: &ProviderClient) -> Result<AccountInfo, ProviderError> {
    let kind = client.provider();
    let (probe, path) = match client.identity_url() {
        Some(url) if kind == ProviderKind::Salesforce => {
            if !trusted_identity_url(client, url) {
                return Err(ProviderError::Misconfigured {
                    provider: kind,
                    reason: "the identity URL is not an https URL on a Salesforce host".to_owned(),
                });
            }
            (SALESFORCE_IDENTITY, url.to_owned())
        }
        _ => {
            let probe = probe(kind);
            let path = probe.path.to_owned();
            (probe, path)
        }
    };
    let what = format!("GET {}", probe.path);
    let body: Value = client
        .call(client.request(Method::GET, &path), &what)
        .await?;
    let raw_id = body
        .pointer(probe.account_id)
        .and_then(text)
        .ok_or_else(|| client.missing(&what, probe.account_id.trim_start_matches('/')))?;
    // Zendesk identifies the account by subdomain, read from the user's API URL.
    let external_account_id = if kind == ProviderKind::Zendesk {
        url::Url::parse(&raw_id)
            .ok()
            .and_then(|url| {
                url.host_str()
                    .map(|host| host.split('.').next().unwrap_or(host).to_owned())
            })
            .ok_or_else(|| client.missing(&what, "user.url"))?
    } else {
        raw_id
    };
    let display_name = probe
        .display_name
        .iter()
        .find_map(|pointer| body.pointer(pointer).and_then(text));
    let details: Map<String, Value> = probe
        .details
        .iter()
        .filter_map(|(name, pointer)| {
            body.pointer(pointer)
                .filter(|value| !value.is_null())
                .map(|value| ((*name).to_owned(), value.clone()))
        })
        .collect();
    Ok(AccountInfo {
        external_account_id,
        display_name,
        details,
        response_time: Duration::ZERO,
    })
}

/// The kinds of Stripe API key a connection may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeKeyKind {
    /// `rk_live_…` / `rk_test_…`: a restricted key, the recommended kind (read-only permissions).
    Restricted,
    /// `sk_live_…` / `sk_test_…`: a full secret key; it works, but grants more than a sync needs.
    Secret,
}

/// Checks the shape of a Stripe API key an admin entered before any call is made, so a publishable
/// key or a webhook secret pasted by mistake gets a clear error. The key never appears in the error.
pub fn check_stripe_api_key(key: &SecretString) -> Result<StripeKeyKind, ProviderError> {
    let key = key.expose_secret().trim();
    let refuse = |reason: &str| ProviderError::Misconfigured {
        provider: ProviderKind::Stripe,
        reason: reason.to_owned(),
    };
    let kind = if key.starts_with("rk_live_") || key.starts_with("rk_test_") {
        StripeKeyKind::Restricted
    } else if key.starts_with("sk_live_") || key.starts_with("sk_test_") {
        StripeKeyKind::Secret
    } else if key.starts_with("pk_") {
        return Err(refuse(
            "a publishable key (pk_…) cannot read data; use a restricted key (rk_…)",
        ));
    } else if key.starts_with("whsec_") {
        return Err(refuse(
            "that is a webhook signing secret (whsec_…), not an API key",
        ));
    } else {
        return Err(refuse(
            "not a Stripe API key: expected rk_live_…, rk_test_…, sk_live_… or sk_test_…",
        ));
    };
    let body = key.splitn(3, '_').nth(2).unwrap_or_default();
    if body.len() < 16 || !body.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(refuse("the API key is truncated or has stray characters"));
    }
    Ok(kind)
}

#[cfg(test)]
mod tests;
