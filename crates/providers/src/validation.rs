//! Connection validation: each provider's documented account-info call (its adapter's [`Probe`]),
//! reduced to an [`AccountInfo`] of allow-listed, non-secret facts.

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value};

use crate::client::{AccountInfo, ProviderClient};
use crate::{ProviderError, ProviderKind};

/// A provider's account-info call: the path, the field holding the account id, the fields holding
/// the display name (first present wins), and the fields worth keeping (JSON pointers).
pub(crate) struct Probe {
    /// The documented account-info call (also how errors name it).
    pub(crate) path: &'static str,
    /// The pointer to the account id.
    pub(crate) account_id: &'static str,
    /// Pointers to a display name, tried in order.
    pub(crate) display_name: &'static [&'static str],
    /// `(detail key, pointer)` pairs kept in [`AccountInfo::details`].
    pub(crate) details: &'static [(&'static str, &'static str)],
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Calls `url` (the probe's path, or Salesforce's identity URL) and keeps only what `probe`
/// allows; `account_id` turns the raw id into the account id (Zendesk: the subdomain).
pub(crate) async fn run_probe(
    client: &ProviderClient,
    probe: &Probe,
    url: &str,
    account_id: impl FnOnce(String) -> Option<String>,
) -> Result<AccountInfo, ProviderError> {
    let what = format!("GET {}", probe.path);
    let body: Value = client.call(client.request(Method::GET, url), &what).await?;
    let field = probe.account_id.trim_start_matches('/').replace('/', ".");
    let raw_id = body
        .pointer(probe.account_id)
        .and_then(text)
        .ok_or_else(|| client.missing(&what, &field))?;
    let external_account_id = account_id(raw_id).ok_or_else(|| client.missing(&what, &field))?;
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
