//! Which fields a Zendesk object has: the documented properties, and the account's custom fields
//! (`GET /api/v2/{ticket|user|organization}_fields`, read only when a mapping names one):
//! `custom_fields.<id>` (or `custom_field_<id>`) for tickets, `user_fields.<key>` and
//! `organization_fields.<key>`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ProviderError;
use crate::client::ProviderClient;

/// Zendesk's largest page for the custom field lists.
const PAGE_SIZE: &str = "100";
/// A bound on the pages of one Zendesk field list (10,000 fields), so a provider that keeps
/// answering `has_more` cannot hold the call forever.
const MAX_PAGES: usize = 100;

/// Top-level properties of a Zendesk ticket as read (write-only properties left out).
const TICKET_FIELDS: &[&str] = &[
    "allow_attachments",
    "allow_channelback",
    "assignee_id",
    "brand_id",
    "collaborator_ids",
    "created_at",
    "custom_fields",
    "custom_status_id",
    "description",
    "due_at",
    "email_cc_ids",
    "external_id",
    "fields",
    "follower_ids",
    "followup_ids",
    "forum_topic_id",
    "from_messaging_channel",
    "generated_timestamp",
    "group_id",
    "has_incidents",
    "id",
    "is_public",
    "organization_id",
    "priority",
    "problem_id",
    "raw_subject",
    "recipient",
    "requester_id",
    "satisfaction_rating",
    "sharing_agreement_ids",
    "status",
    "subject",
    "submitter_id",
    "tags",
    "ticket_form_id",
    "type",
    "updated_at",
    "url",
    "via",
    "via_followup_source_id",
];

/// Top-level properties of a Zendesk user.
const USER_FIELDS: &[&str] = &[
    "active",
    "alias",
    "chat_only",
    "created_at",
    "custom_role_id",
    "default_group_id",
    "details",
    "email",
    "external_id",
    "iana_time_zone",
    "id",
    "last_login_at",
    "locale",
    "locale_id",
    "moderator",
    "name",
    "notes",
    "only_private_comments",
    "organization_id",
    "phone",
    "photo",
    "remote_photo_url",
    "report_csv",
    "restricted_agent",
    "role",
    "role_type",
    "shared",
    "shared_agent",
    "shared_phone_number",
    "signature",
    "suspended",
    "tags",
    "ticket_restriction",
    "time_zone",
    "two_factor_auth_enabled",
    "updated_at",
    "url",
    "user_fields",
    "verified",
];

/// Top-level properties of a Zendesk organization (`deleted_at` comes with the incremental
/// export).
const ORGANIZATION_FIELDS: &[&str] = &[
    "created_at",
    "deleted_at",
    "details",
    "domain_names",
    "external_id",
    "group_id",
    "id",
    "name",
    "notes",
    "organization_fields",
    "shared_comments",
    "shared_tickets",
    "tags",
    "updated_at",
    "url",
];

/// A page of a Zendesk custom field list (cursor pagination); the fields are under the list's
/// own key.
#[derive(Debug, Deserialize)]
struct FieldPage {
    #[serde(default)]
    meta: Option<Meta>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Cursor pagination's `meta`.
#[derive(Debug, Deserialize)]
struct Meta {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    after_cursor: Option<String>,
}

/// How a Zendesk object names its custom fields in a mapping.
#[derive(Debug, Clone, Copy)]
struct Custom {
    /// The list of the object's custom fields (`ticket_fields`, …), also its key in the answer.
    list: &'static str,
    /// What identifies a custom field: `id` for tickets, `key` for users and organizations.
    identifier: &'static str,
}

/// The object's fields and custom fields, by object type (validated by the caller).
fn object_fields(object_type: &str) -> (&'static [&'static str], Custom) {
    match object_type {
        "tickets" => (
            TICKET_FIELDS,
            Custom {
                list: "ticket_fields",
                identifier: "id",
            },
        ),
        "users" => (
            USER_FIELDS,
            Custom {
                list: "user_fields",
                identifier: "key",
            },
        ),
        _ => (
            ORGANIZATION_FIELDS,
            Custom {
                list: "organization_fields",
                identifier: "key",
            },
        ),
    }
}

/// The custom field a mapping names, if it names one: `custom_fields.<id>` or
/// `custom_field_<id>` for tickets, `user_fields.<key>` / `organization_fields.<key>` otherwise.
fn custom_name<'a>(object_type: &str, field: &'a str) -> Option<&'a str> {
    let name = match object_type {
        "tickets" => field
            .strip_prefix("custom_fields.")
            .or_else(|| field.strip_prefix("custom_field_")),
        "users" => field.strip_prefix("user_fields."),
        _ => field.strip_prefix("organization_fields."),
    };
    name.filter(|name| !name.is_empty())
}

/// Zendesk: the documented properties, or a custom field the account defines (the custom
/// field list is read only when a mapping names one).
pub(super) async fn missing<'a>(
    client: &ProviderClient,
    object_type: &str,
    wanted: &[&'a str],
) -> Result<Vec<&'a str>, ProviderError> {
    let (standard, custom) = object_fields(object_type);
    let unknown: Vec<&'a str> = wanted
        .iter()
        .copied()
        .filter(|field| !standard.contains(field))
        .collect();
    if !unknown
        .iter()
        .any(|field| custom_name(object_type, field).is_some())
    {
        return Ok(unknown);
    }
    let defined = custom_fields(client, custom).await?;
    Ok(unknown
        .into_iter()
        .filter(|field| {
            custom_name(object_type, field)
                .is_none_or(|name| !defined.iter().any(|known| known == name))
        })
        .collect())
}

/// Every custom field identifier of a Zendesk list, following cursor pagination.
async fn custom_fields(
    client: &ProviderClient,
    custom: Custom,
) -> Result<Vec<String>, ProviderError> {
    let path = format!("/api/v2/{}", custom.list);
    let what = format!("GET {path}");
    let mut defined = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("page[size]", PAGE_SIZE.to_owned())];
        if let Some(after) = &after {
            query.push(("page[after]", after.clone()));
        }
        let mut page: FieldPage = client
            .call(client.request(Method::GET, &path).query(&query), &what)
            .await?;
        let Some(Value::Array(entries)) = page.rest.remove(custom.list) else {
            return Err(client.missing(&what, custom.list));
        };
        for entry in entries {
            let identifier = match entry.get(custom.identifier) {
                Some(Value::Number(id)) => id.to_string(),
                Some(Value::String(key)) if !key.is_empty() => key.clone(),
                _ => return Err(client.missing(&what, custom.identifier)),
            };
            defined.push(identifier);
        }
        match page.meta {
            Some(meta) if meta.has_more => {
                let next = meta
                    .after_cursor
                    .ok_or_else(|| client.missing(&what, "meta.after_cursor"))?;
                if after.as_ref() == Some(&next) {
                    return Err(ProviderError::Decode {
                        provider: client.provider(),
                        what,
                        reason: "the next page's cursor repeats the last one".to_owned(),
                    });
                }
                after = Some(next);
            }
            _ => return Ok(defined),
        }
    }
    Err(ProviderError::Decode {
        provider: client.provider(),
        what,
        reason: format!("more than {MAX_PAGES} pages of fields"),
    })
}
