//! Which fields a HubSpot object has: its property names, exactly
//! (`GET /crm/v3/properties/{objectType}`).

use reqwest::Method;
use serde::Deserialize;

use crate::ProviderError;
use crate::client::ProviderClient;

/// An entry of a schema list that only needs its name.
#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

/// `GET /crm/v3/properties/{objectType}`.
#[derive(Debug, Deserialize)]
struct Properties {
    results: Vec<Named>,
}

/// HubSpot: property names, exactly.
pub(super) async fn missing<'a>(
    client: &ProviderClient,
    object_type: &str,
    wanted: &[&'a str],
) -> Result<Vec<&'a str>, ProviderError> {
    let path = format!("/crm/v3/properties/{object_type}");
    let properties: Properties = client
        .call(client.request(Method::GET, &path), &format!("GET {path}"))
        .await?;
    Ok(wanted
        .iter()
        .copied()
        .filter(|field| !properties.results.iter().any(|known| known.name == *field))
        .collect())
}
