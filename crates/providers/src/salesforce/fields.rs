//! Which fields a Salesforce object has: field names in any letter case, or relationship paths,
//! from `GET …/sobjects/{Type}/describe`.

use reqwest::Method;
use serde::Deserialize;

use super::reader::API_VERSION;
use crate::ProviderError;
use crate::client::ProviderClient;

/// `GET /services/data/vXX.X/sobjects/{Type}/describe`: only the fields matter.
#[derive(Debug, Deserialize)]
struct Describe {
    fields: Vec<Field>,
}

/// One field of a describe result.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Field {
    name: String,
    #[serde(default)]
    relationship_name: Option<String>,
}

/// Whether a Salesforce describe has `field`: a field name in any letter case, or a relationship
/// path whose first part is a relationship of the object (the rest is not checked against the
/// parent object).
fn has(describe: &Describe, field: &str) -> bool {
    match field.split_once('.') {
        None => describe
            .fields
            .iter()
            .any(|known| known.name.eq_ignore_ascii_case(field)),
        Some((relationship, rest)) => {
            !rest.is_empty()
                && rest.split('.').all(|part| !part.is_empty())
                && describe.fields.iter().any(|known| {
                    known
                        .relationship_name
                        .as_deref()
                        .is_some_and(|name| name.eq_ignore_ascii_case(relationship))
                })
        }
    }
}

/// Salesforce: field names in any letter case, or relationship paths.
pub(super) async fn missing<'a>(
    client: &ProviderClient,
    object_type: &str,
    wanted: &[&'a str],
) -> Result<Vec<&'a str>, ProviderError> {
    let path = format!("/services/data/v{API_VERSION}/sobjects/{object_type}/describe");
    let describe: Describe = client
        .call(client.request(Method::GET, &path), &format!("GET {path}"))
        .await?;
    Ok(wanted
        .iter()
        .copied()
        .filter(|field| !has(&describe, field))
        .collect())
}
