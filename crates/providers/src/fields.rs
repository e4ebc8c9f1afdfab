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

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::ProviderClient;
use crate::salesforce::API_VERSION as SALESFORCE_API_VERSION;
use crate::{ProviderError, ProviderKind};

/// Zendesk's largest page for the custom field lists.
const ZENDESK_PAGE_SIZE: &str = "100";
/// A bound on the pages of one Zendesk field list (10,000 fields), so a provider that keeps
/// answering `has_more` cannot hold the call forever.
const ZENDESK_MAX_PAGES: usize = 100;

/// Top-level properties of a Zendesk ticket as read (write-only properties left out).
const ZENDESK_TICKET_FIELDS: &[&str] = &[
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
const ZENDESK_USER_FIELDS: &[&str] = &[
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
const ZENDESK_ORGANIZATION_FIELDS: &[&str] = &[
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

/// Top-level properties of an Intercom contact that are not data attributes themselves
/// (containers and identifiers); the data attributes come from the API.
const INTERCOM_CONTACT_FIELDS: &[&str] = &[
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
const INTERCOM_COMPANY_FIELDS: &[&str] = &[
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
const INTERCOM_CONVERSATION_FIELDS: &[&str] = &[
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

/// Top-level properties of a Stripe customer (`deleted` on deleted stubs).
const STRIPE_CUSTOMER_FIELDS: &[&str] = &[
    "id",
    "object",
    "address",
    "balance",
    "cash_balance",
    "created",
    "currency",
    "default_source",
    "deleted",
    "delinquent",
    "description",
    "discount",
    "email",
    "invoice_credit_balance",
    "invoice_prefix",
    "invoice_settings",
    "livemode",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "sources",
    "subscriptions",
    "tax",
    "tax_exempt",
    "tax_ids",
    "test_clock",
];

/// Top-level properties of a Stripe invoice at the pinned API version (since 2025-03-31.basil the
/// subscription and quote live in `parent`, payments in `payments`, taxes in `total_taxes`;
/// `deleted` on deleted drafts).
const STRIPE_INVOICE_FIELDS: &[&str] = &[
    "id",
    "object",
    "account_country",
    "account_name",
    "account_tax_ids",
    "amount_due",
    "amount_paid",
    "amount_remaining",
    "amount_shipping",
    "application",
    "application_fee_amount",
    "attempt_count",
    "attempted",
    "auto_advance",
    "automatic_tax",
    "billing_reason",
    "collection_method",
    "created",
    "currency",
    "custom_fields",
    "customer",
    "customer_address",
    "customer_email",
    "customer_name",
    "customer_phone",
    "customer_shipping",
    "customer_tax_exempt",
    "customer_tax_ids",
    "default_payment_method",
    "default_source",
    "default_tax_rates",
    "deleted",
    "description",
    "discount",
    "discounts",
    "due_date",
    "effective_at",
    "ending_balance",
    "footer",
    "from_invoice",
    "hosted_invoice_url",
    "invoice_pdf",
    "issuer",
    "last_finalization_error",
    "latest_revision",
    "lines",
    "livemode",
    "metadata",
    "next_payment_attempt",
    "number",
    "on_behalf_of",
    "parent",
    "payments",
    "payment_settings",
    "period_end",
    "period_start",
    "post_payment_credit_notes_amount",
    "pre_payment_credit_notes_amount",
    "receipt_number",
    "rendering",
    "shipping_cost",
    "shipping_details",
    "starting_balance",
    "statement_descriptor",
    "status",
    "status_transitions",
    "subtotal",
    "subtotal_excluding_tax",
    "test_clock",
    "threshold_reason",
    "total",
    "total_discount_amounts",
    "total_excluding_tax",
    "total_taxes",
    "transfer_data",
    "webhooks_delivered_at",
];

/// Top-level properties of a Stripe charge (no `invoice` since 2025-03-31.basil).
const STRIPE_CHARGE_FIELDS: &[&str] = &[
    "id",
    "object",
    "amount",
    "amount_captured",
    "amount_refunded",
    "application",
    "application_fee",
    "application_fee_amount",
    "balance_transaction",
    "billing_details",
    "calculated_statement_descriptor",
    "captured",
    "created",
    "currency",
    "customer",
    "description",
    "disputed",
    "failure_balance_transaction",
    "failure_code",
    "failure_message",
    "fraud_details",
    "livemode",
    "metadata",
    "on_behalf_of",
    "outcome",
    "paid",
    "payment_intent",
    "payment_method",
    "payment_method_details",
    "radar_options",
    "receipt_email",
    "receipt_number",
    "receipt_url",
    "refunded",
    "refunds",
    "review",
    "shipping",
    "source",
    "source_transfer",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "status",
    "transfer",
    "transfer_data",
    "transfer_group",
];

/// An entry of a schema list that only needs its name.
#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

/// `GET /crm/v3/properties/{objectType}`.
#[derive(Debug, Deserialize)]
struct HubSpotProperties {
    results: Vec<Named>,
}

/// `GET /services/data/vXX.X/sobjects/{Type}/describe`: only the fields matter.
#[derive(Debug, Deserialize)]
struct SalesforceDescribe {
    fields: Vec<SalesforceField>,
}

/// One field of a describe result.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SalesforceField {
    name: String,
    #[serde(default)]
    relationship_name: Option<String>,
}

/// `GET /data_attributes?model=…`.
#[derive(Debug, Deserialize)]
struct IntercomDataAttributes {
    data: Vec<IntercomDataAttribute>,
}

/// One data attribute; `full_name` is the path in the object (`custom_attributes.plan` for a
/// custom attribute, `location.city` for a nested one).
#[derive(Debug, Deserialize)]
struct IntercomDataAttribute {
    name: String,
    #[serde(default)]
    full_name: Option<String>,
}

/// A page of a Zendesk custom field list (cursor pagination); the fields are under the list's
/// own key.
#[derive(Debug, Deserialize)]
struct ZendeskFieldPage {
    #[serde(default)]
    meta: Option<ZendeskMeta>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Cursor pagination's `meta`.
#[derive(Debug, Deserialize)]
struct ZendeskMeta {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    after_cursor: Option<String>,
}

/// How a Zendesk object names its custom fields in a mapping.
#[derive(Debug, Clone, Copy)]
struct ZendeskCustom {
    /// The list of the object's custom fields (`ticket_fields`, …), also its key in the answer.
    list: &'static str,
    /// What identifies a custom field: `id` for tickets, `key` for users and organizations.
    identifier: &'static str,
}

/// The object's fields and custom fields, by object type (validated by the caller).
fn zendesk_object(object_type: &str) -> (&'static [&'static str], ZendeskCustom) {
    match object_type {
        "tickets" => (
            ZENDESK_TICKET_FIELDS,
            ZendeskCustom {
                list: "ticket_fields",
                identifier: "id",
            },
        ),
        "users" => (
            ZENDESK_USER_FIELDS,
            ZendeskCustom {
                list: "user_fields",
                identifier: "key",
            },
        ),
        _ => (
            ZENDESK_ORGANIZATION_FIELDS,
            ZendeskCustom {
                list: "organization_fields",
                identifier: "key",
            },
        ),
    }
}

/// The custom field a mapping names, if it names one: `custom_fields.<id>` or
/// `custom_field_<id>` for tickets, `user_fields.<key>` / `organization_fields.<key>` otherwise.
fn zendesk_custom_name<'a>(object_type: &str, field: &'a str) -> Option<&'a str> {
    let name = match object_type {
        "tickets" => field
            .strip_prefix("custom_fields.")
            .or_else(|| field.strip_prefix("custom_field_")),
        "users" => field.strip_prefix("user_fields."),
        _ => field.strip_prefix("organization_fields."),
    };
    name.filter(|name| !name.is_empty())
}

/// The Intercom data attribute model of an object type.
fn intercom_model(object_type: &str) -> (&'static str, &'static [&'static str]) {
    match object_type {
        "contacts" => ("contact", INTERCOM_CONTACT_FIELDS),
        "companies" => ("company", INTERCOM_COMPANY_FIELDS),
        _ => ("conversation", INTERCOM_CONVERSATION_FIELDS),
    }
}

/// The documented fields of a Stripe object type.
fn stripe_fields(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "customers" => STRIPE_CUSTOMER_FIELDS,
        "invoices" => STRIPE_INVOICE_FIELDS,
        _ => STRIPE_CHARGE_FIELDS,
    }
}

/// Whether a Stripe mapping names a known field or a metadata key.
fn stripe_has(object_type: &str, field: &str) -> bool {
    stripe_fields(object_type).contains(&field)
        || field
            .strip_prefix("metadata.")
            .is_some_and(|key| !key.is_empty())
}

/// Whether a Salesforce describe has `field`: a field name in any letter case, or a relationship
/// path whose first part is a relationship of the object (the rest is not checked against the
/// parent object).
fn salesforce_has(describe: &SalesforceDescribe, field: &str) -> bool {
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
        let missing = match self.provider() {
            ProviderKind::HubSpot => self.hubspot_missing(object_type, &wanted).await?,
            ProviderKind::Salesforce => self.salesforce_missing(object_type, &wanted).await?,
            ProviderKind::Zendesk => self.zendesk_missing(object_type, &wanted).await?,
            ProviderKind::Intercom => self.intercom_missing(object_type, &wanted).await?,
            ProviderKind::Stripe => wanted
                .into_iter()
                .filter(|field| !stripe_has(object_type, field))
                .collect(),
            ProviderKind::Gmail => Vec::new(),
        };
        Ok(missing.into_iter().map(str::to_owned).collect())
    }

    /// HubSpot: property names, exactly.
    async fn hubspot_missing<'a>(
        &self,
        object_type: &str,
        wanted: &[&'a str],
    ) -> Result<Vec<&'a str>, ProviderError> {
        let path = format!("/crm/v3/properties/{object_type}");
        let properties: HubSpotProperties = self
            .call(self.request(Method::GET, &path), &format!("GET {path}"))
            .await?;
        Ok(wanted
            .iter()
            .copied()
            .filter(|field| !properties.results.iter().any(|known| known.name == *field))
            .collect())
    }

    /// Salesforce: field names in any letter case, or relationship paths.
    async fn salesforce_missing<'a>(
        &self,
        object_type: &str,
        wanted: &[&'a str],
    ) -> Result<Vec<&'a str>, ProviderError> {
        let path =
            format!("/services/data/v{SALESFORCE_API_VERSION}/sobjects/{object_type}/describe");
        let describe: SalesforceDescribe = self
            .call(self.request(Method::GET, &path), &format!("GET {path}"))
            .await?;
        Ok(wanted
            .iter()
            .copied()
            .filter(|field| !salesforce_has(&describe, field))
            .collect())
    }

    /// Zendesk: the documented properties, or a custom field the account defines (the custom
    /// field list is read only when a mapping names one).
    async fn zendesk_missing<'a>(
        &self,
        object_type: &str,
        wanted: &[&'a str],
    ) -> Result<Vec<&'a str>, ProviderError> {
        let (standard, custom) = zendesk_object(object_type);
        let unknown: Vec<&'a str> = wanted
            .iter()
            .copied()
            .filter(|field| !standard.contains(field))
            .collect();
        if !unknown
            .iter()
            .any(|field| zendesk_custom_name(object_type, field).is_some())
        {
            return Ok(unknown);
        }
        let defined = self.zendesk_custom_fields(custom).await?;
        Ok(unknown
            .into_iter()
            .filter(|field| {
                zendesk_custom_name(object_type, field)
                    .is_none_or(|name| !defined.iter().any(|known| known == name))
            })
            .collect())
    }

    /// Every custom field identifier of a Zendesk list, following cursor pagination.
    async fn zendesk_custom_fields(
        &self,
        custom: ZendeskCustom,
    ) -> Result<Vec<String>, ProviderError> {
        let path = format!("/api/v2/{}", custom.list);
        let what = format!("GET {path}");
        let mut defined = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..ZENDESK_MAX_PAGES {
            let mut query = vec![("page[size]", ZENDESK_PAGE_SIZE.to_owned())];
            if let Some(after) = &after {
                query.push(("page[after]", after.clone()));
            }
            let mut page: ZendeskFieldPage = self
                .call(self.request(Method::GET, &path).query(&query), &what)
                .await?;
            let Some(Value::Array(entries)) = page.rest.remove(custom.list) else {
                return Err(self.missing(&what, custom.list));
            };
            for entry in entries {
                let identifier = match entry.get(custom.identifier) {
                    Some(Value::Number(id)) => id.to_string(),
                    Some(Value::String(key)) if !key.is_empty() => key.clone(),
                    _ => return Err(self.missing(&what, custom.identifier)),
                };
                defined.push(identifier);
            }
            match page.meta {
                Some(meta) if meta.has_more => {
                    let next = meta
                        .after_cursor
                        .ok_or_else(|| self.missing(&what, "meta.after_cursor"))?;
                    if after.as_ref() == Some(&next) {
                        return Err(ProviderError::Decode {
                            provider: self.provider(),
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
            provider: self.provider(),
            what,
            reason: format!("more than {ZENDESK_MAX_PAGES} pages of fields"),
        })
    }

    /// Intercom: the object's own properties, or a data attribute's `full_name`.
    async fn intercom_missing<'a>(
        &self,
        object_type: &str,
        wanted: &[&'a str],
    ) -> Result<Vec<&'a str>, ProviderError> {
        let (model, standard) = intercom_model(object_type);
        let what = format!("GET /data_attributes?model={model}");
        let attributes: IntercomDataAttributes = self
            .call(
                self.request(Method::GET, "/data_attributes")
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
}

#[cfg(test)]
mod tests;
