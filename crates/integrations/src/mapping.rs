//! Field mappings: which attribute of which entity type each provider field becomes. Every object
//! a provider syncs has a default mapping; a connection's `property_mappings` adds or renames
//! fields per object (`{"contacts": {"hs_lead_score": "lead_score"}}`).

use std::collections::BTreeMap;

use providers::ProviderKind;
use serde_json::Value;

use crate::EngineError;

/// How the records of one object type become entities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMapping {
    /// The entity type the records become (`person`, `company`, `deal`, …).
    pub entity_type: &'static str,
    /// External field → attribute key.
    pub fields: BTreeMap<String, String>,
}

/// `(external field, attribute key)` pairs of a default mapping.
type Pairs = &'static [(&'static str, &'static str)];

fn defaults(provider: ProviderKind, object_type: &str) -> Option<(&'static str, Pairs)> {
    let mapping: (&'static str, Pairs) = match (provider, object_type) {
        (ProviderKind::HubSpot, "contacts") => (
            "person",
            &[
                ("email", "email"),
                ("firstname", "first_name"),
                ("lastname", "last_name"),
                ("phone", "phone"),
                ("company", "company_name"),
                ("jobtitle", "job_title"),
                ("lifecyclestage", "lifecycle_stage"),
            ],
        ),
        (ProviderKind::HubSpot, "companies") => (
            "company",
            &[
                ("name", "name"),
                ("domain", "domain"),
                ("industry", "industry"),
                ("phone", "phone"),
                ("city", "city"),
                ("country", "country"),
                ("numberofemployees", "employee_count"),
            ],
        ),
        (ProviderKind::HubSpot, "deals") => (
            "deal",
            &[
                ("dealname", "name"),
                ("amount", "amount"),
                ("dealstage", "stage"),
                ("pipeline", "pipeline"),
                ("closedate", "close_date"),
            ],
        ),
        (ProviderKind::Salesforce, "Account") => (
            "company",
            &[
                ("Name", "name"),
                ("Website", "domain"),
                ("Industry", "industry"),
                ("Phone", "phone"),
            ],
        ),
        (ProviderKind::Salesforce, "Contact") => (
            "person",
            &[
                ("FirstName", "first_name"),
                ("LastName", "last_name"),
                ("Email", "email"),
                ("Phone", "phone"),
            ],
        ),
        (ProviderKind::Salesforce, "Lead") => (
            "lead",
            &[
                ("FirstName", "first_name"),
                ("LastName", "last_name"),
                ("Email", "email"),
                ("Company", "company_name"),
                ("Status", "status"),
            ],
        ),
        (ProviderKind::Salesforce, "Opportunity") => (
            "deal",
            &[
                ("Name", "name"),
                ("Amount", "amount"),
                ("StageName", "stage"),
                ("CloseDate", "close_date"),
            ],
        ),
        (ProviderKind::Stripe, "customers") => (
            "customer",
            &[
                ("email", "email"),
                ("name", "name"),
                ("phone", "phone"),
                ("description", "description"),
            ],
        ),
        (ProviderKind::Stripe, "invoices") => (
            "invoice",
            &[
                ("number", "number"),
                ("status", "status"),
                ("amount_due", "amount_due"),
                ("currency", "currency"),
                ("customer", "customer_id"),
            ],
        ),
        (ProviderKind::Stripe, "charges") => (
            "charge",
            &[
                ("amount", "amount"),
                ("currency", "currency"),
                ("status", "status"),
                ("customer", "customer_id"),
            ],
        ),
        (ProviderKind::Zendesk, "tickets") => (
            "ticket",
            &[
                ("subject", "subject"),
                ("status", "status"),
                ("priority", "priority"),
                ("requester_id", "requester_id"),
            ],
        ),
        (ProviderKind::Zendesk, "users") => (
            "person",
            &[
                ("name", "name"),
                ("email", "email"),
                ("phone", "phone"),
                ("role", "role"),
            ],
        ),
        (ProviderKind::Zendesk, "organizations") => {
            ("company", &[("name", "name"), ("domain_names", "domains")])
        }
        (ProviderKind::Intercom, "contacts") => (
            "person",
            &[
                ("email", "email"),
                ("name", "name"),
                ("phone", "phone"),
                ("role", "role"),
            ],
        ),
        (ProviderKind::Intercom, "companies") => (
            "company",
            &[
                ("name", "name"),
                ("website", "domain"),
                ("industry", "industry"),
            ],
        ),
        (ProviderKind::Intercom, "conversations") => (
            "conversation",
            &[
                ("title", "title"),
                ("state", "state"),
                ("priority", "priority"),
            ],
        ),
        (ProviderKind::Gmail, "messages") => (
            "email",
            &[
                ("Subject", "subject"),
                ("From", "from"),
                ("To", "to"),
                ("Date", "date"),
                ("snippet", "snippet"),
                ("labelIds", "labels"),
                ("body", "body"),
                ("attachments", "attachments"),
            ],
        ),
        _ => return None,
    };
    Some(mapping)
}

/// Whether `entity_type` is one a sync writes (`person`, `company`, `deal`, …).
pub fn is_synced_entity_type(entity_type: &str) -> bool {
    ProviderKind::ALL.iter().any(|provider| {
        providers::objects(*provider).iter().any(|object| {
            defaults(*provider, object).is_some_and(|(synced, _)| synced == entity_type)
        })
    })
}

/// The mapping for `object_type` of `provider`: the default, with the connection's
/// `property_mappings` for that object applied on top. A custom mapping must be an object of
/// strings, with attribute keys of letters, digits and underscores.
pub fn object_mapping(
    provider: ProviderKind,
    object_type: &str,
    property_mappings: Option<&Value>,
) -> Result<ObjectMapping, EngineError> {
    let (entity_type, pairs) = defaults(provider, object_type).ok_or_else(|| {
        EngineError::InvalidInput(format!("{provider} does not sync `{object_type}`"))
    })?;
    let mut fields: BTreeMap<String, String> = pairs
        .iter()
        .map(|(external, key)| ((*external).to_owned(), (*key).to_owned()))
        .collect();
    if let Some(custom) = property_mappings.and_then(|mappings| mappings.get(object_type)) {
        let custom = custom.as_object().ok_or_else(|| {
            EngineError::InvalidInput(format!("property_mappings.{object_type} must be an object"))
        })?;
        for (external, key) in custom {
            let key = key.as_str().ok_or_else(|| {
                EngineError::InvalidInput(format!(
                    "property_mappings.{object_type}.{external} must be an attribute key"
                ))
            })?;
            if !is_attribute_key(key) || external.is_empty() {
                return Err(EngineError::InvalidInput(format!(
                    "`{key}` is not an attribute key (letters, digits, underscores, at most 100)"
                )));
            }
            fields.insert(external.clone(), key.to_owned());
        }
    }
    Ok(ObjectMapping {
        entity_type,
        fields,
    })
}

/// Attribute keys are `snake_case`-like identifiers of at most 100 characters.
pub fn is_attribute_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests;
