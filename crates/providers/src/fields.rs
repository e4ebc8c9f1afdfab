//! Which fields a provider's object has, so that a custom field mapping naming a field the
//! provider lacks is refused before it is stored. One schema call per object where the provider
//! has a schema API (HubSpot properties, Salesforce describe, Zendesk custom field lists, Intercom
//! data attributes); documented field lists where it has none (Stripe); nothing to check where
//! names are free-form (Gmail headers).
//!
//! Names are checked in the form the readers emit them as [`crate::Record`] field keys, plus the
//! dotted forms of custom fields kept inside a container field: Zendesk `user_fields.<key>`,
//! `organization_fields.<key>` and `custom_fields.<id>` (or `custom_field_<id>`) for tickets,
//! Intercom `custom_attributes.<name>` (any data attribute's `full_name`), Stripe `metadata.<key>`,
//! Salesforce relationship paths `Relationship.Field`.

use crate::ProviderError;
use crate::client::ProviderClient;
use crate::dispatch::dispatch;

impl ProviderClient {
    /// The names in `fields` that `object_type` (a name [`ProviderClient::objects`] lists) does
    /// not have at the provider, in their order and without repeats; empty when all exist.
    ///
    /// Asks the provider's schema API once per call (not per field): HubSpot
    /// `GET /crm/v3/properties/{objectType}`, Salesforce `GET …/sobjects/{Type}/describe`,
    /// Zendesk `GET /api/v2/{ticket|user|organization}_fields` (only when a custom field is named),
    /// Intercom `GET /data_attributes?model=…`. Stripe is checked against documented field lists
    /// (and `metadata.<key>`) without a call; Gmail headers are free-form, so nothing is missing.
    /// An unknown object type is [`ProviderError::Misconfigured`].
    pub async fn missing_fields(
        &self,
        object_type: &str,
        fields: &[String],
    ) -> Result<Vec<String>, ProviderError> {
        if !self.objects().contains(&object_type) {
            return Err(ProviderError::Misconfigured {
                provider: self.provider(),
                reason: format!(
                    "no object type `{object_type}`; this provider syncs {}",
                    self.objects().join(", ")
                ),
            });
        }
        let mut wanted: Vec<&str> = Vec::with_capacity(fields.len());
        for field in fields {
            if !wanted.contains(&field.as_str()) {
                wanted.push(field);
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let missing = dispatch!(self.provider(), adapter => {
            adapter.missing_fields(self, object_type, &wanted).await?
        });
        Ok(missing.into_iter().map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests;
