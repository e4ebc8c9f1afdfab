//! Which fields an Intercom object has: its own properties, or any data attribute's `full_name`
//! (`GET /data_attributes?model=…`; custom attributes are `custom_attributes.<name>`).

use reqwest::Method;
use serde::Deserialize;

use crate::ProviderError;
use crate::client::ProviderClient;

/// Top-level properties of an Intercom contact that are not data attributes themselves
/// (containers and identifiers); the data attributes come from the API.
const CONTACT_FIELDS: &[&str] = &[
    "type",
    "id",
    "workspace_id",
    "external_id",
    "role",
    "email",
    "email_domain",
    "phone",
    "formatted_phone",
    "name",
    "avatar",
    "owner_id",
    "social_profiles",
    "has_hard_bounced",
    "marked_email_as_spam",
    "unsubscribed_from_emails",
    "created_at",
    "updated_at",
    "signed_up_at",
    "last_seen_at",
    "last_replied_at",
    "last_contacted_at",
    "last_email_opened_at",
    "last_email_clicked_at",
    "language_override",
    "browser",
    "browser_version",
    "browser_language",
    "os",
    "location",
    "android_app_name",
    "android_app_version",
    "android_device",
    "android_os_version",
    "android_sdk_version",
    "android_last_seen_at",
    "ios_app_name",
    "ios_app_version",
    "ios_device",
    "ios_os_version",
    "ios_sdk_version",
    "ios_last_seen_at",
    "custom_attributes",
    "tags",
    "notes",
    "companies",
    "opted_out_subscription_types",
    "opted_in_subscription_types",
    "utm_campaign",
    "utm_content",
    "utm_medium",
    "utm_source",
    "utm_term",
    "referrer",
];

/// Top-level properties of an Intercom company.
const COMPANY_FIELDS: &[&str] = &[
    "type",
    "id",
    "name",
    "app_id",
    "plan",
    "company_id",
    "remote_created_at",
    "created_at",
    "updated_at",
    "last_request_at",
    "size",
    "website",
    "industry",
    "monthly_spend",
    "session_count",
    "user_count",
    "custom_attributes",
    "tags",
    "segments",
];

/// Top-level properties of an Intercom conversation.
const CONVERSATION_FIELDS: &[&str] = &[
    "type",
    "id",
    "title",
    "created_at",
    "updated_at",
    "waiting_since",
    "snoozed_until",
    "open",
    "state",
    "read",
    "priority",
    "admin_assignee_id",
    "team_assignee_id",
    "company",
    "tags",
    "conversation_rating",
    "source",
    "contacts",
    "teammates",
    "custom_attributes",
    "first_contact_reply",
    "sla_applied",
    "statistics",
    "conversation_parts",
    "linked_objects",
    "ai_agent_participated",
    "ai_agent",
];

/// `GET /data_attributes?model=…`.
#[derive(Debug, Deserialize)]
struct DataAttributes {
    data: Vec<DataAttribute>,
}

/// One data attribute; `full_name` is the path in the object (`custom_attributes.plan` for a
/// custom attribute, `location.city` for a nested one).
#[derive(Debug, Deserialize)]
struct DataAttribute {
    name: String,
    #[serde(default)]
    full_name: Option<String>,
}

/// The Intercom data attribute model of an object type.
fn model(object_type: &str) -> (&'static str, &'static [&'static str]) {
    match object_type {
        "contacts" => ("contact", CONTACT_FIELDS),
        "companies" => ("company", COMPANY_FIELDS),
        _ => ("conversation", CONVERSATION_FIELDS),
    }
}

/// Intercom: the object's own properties, or a data attribute's `full_name`.
pub(super) async fn missing<'a>(
    client: &ProviderClient,
    object_type: &str,
    wanted: &[&'a str],
) -> Result<Vec<&'a str>, ProviderError> {
    let (model, standard) = model(object_type);
    let what = format!("GET /data_attributes?model={model}");
    let attributes: DataAttributes = client
        .call(
            client
                .request(Method::GET, "/data_attributes")
                .query(&[("model", model)]),
            &what,
        )
        .await?;
    Ok(wanted
        .iter()
        .copied()
        .filter(|field| {
            !standard.contains(field)
                && !attributes.data.iter().any(|attribute| {
                    attribute.full_name.as_deref().unwrap_or(&attribute.name) == *field
                })
        })
        .collect())
}
