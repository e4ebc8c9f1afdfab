//! Salesforce outbound messages: SOAP `notifications` with no signature and no timestamp, checked
//! by the `OrganizationId` they carry, one event per `Notification`; and the SOAP acknowledgement
//! the listener must answer with, or Salesforce redelivers for up to 24 hours.

use chrono::{DateTime, Utc};
use roxmltree::{Document, Node};
use serde_json::{Map, Value, json};

use crate::ProviderKind;
use crate::webhooks::common;
use crate::webhooks::{VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest};

const PROVIDER: ProviderKind = ProviderKind::Salesforce;
const OUTBOUND_NAMESPACE: &str = "http://soap.sforce.com/2005/09/outbound";
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Nested sObject elements deeper than this are kept as text, so a hostile body can't recurse
/// without bound.
const MAX_FIELD_DEPTH: usize = 8;

/// The body to answer every accepted outbound message with (`Content-Type: text/xml`).
const ACKNOWLEDGEMENT: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
    r#"<soapenv:Body>"#,
    r#"<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">"#,
    r#"<Ack>true</Ack>"#,
    r#"</notificationsResponse>"#,
    r#"</soapenv:Body>"#,
    r#"</soapenv:Envelope>"#,
);

/// The SOAP body (`notificationsResponse` with `Ack` true) to send back, as `text/xml`, after
/// an outbound message has been verified and recorded. Without it Salesforce retries.
pub fn salesforce_acknowledgement() -> &'static str {
    ACKNOWLEDGEMENT
}

/// Verifies Salesforce outbound messages for one org. Outbound messages are not signed: pair this
/// with an unguessable listener URL or Salesforce's client certificate (mutual TLS) at the server.
#[derive(Debug, Clone)]
pub struct SalesforceVerifier {
    organization_id: String,
}

impl SalesforceVerifier {
    /// A verifier for the org whose id (15 or 18 characters) is `organization_id`.
    pub fn new(organization_id: &str) -> Result<Self, WebhookError> {
        if !is_salesforce_id(organization_id) {
            return Err(WebhookError::new(
                PROVIDER,
                WebhookRejection::InvalidConfiguration(
                    "the organization id is not a 15- or 18-character Salesforce id".to_owned(),
                ),
            ));
        }
        Ok(Self {
            organization_id: organization_id.to_owned(),
        })
    }

    /// Parses the SOAP body, checks that `OrganizationId` is this verifier's org (a 15-character
    /// id equals an 18-character one that starts with it), and returns one event per
    /// `Notification`, deduplicated on `salesforce:{OrganizationId}:{Notification Id}`, with the
    /// sObject's `xsi:type` without prefix (`Account`) as object type and its `Id` as object id.
    /// The `SessionId`, a Salesforce session if the admin chose to send one, is left out of the
    /// payload. `now` is unused: outbound messages carry no timestamp.
    pub fn verify(
        &self,
        request: &WebhookRequest<'_>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        let text = std::str::from_utf8(request.body)
            .map_err(|_| common::malformed_payload(PROVIDER, "body is not UTF-8"))?;
        let document = Document::parse(text).map_err(|error| {
            common::malformed_payload(PROVIDER, format!("body is not XML ({error})"))
        })?;
        let notifications = document
            .descendants()
            .find(|node| is_outbound(node, "notifications"))
            .ok_or_else(|| common::malformed_payload(PROVIDER, "no notifications element"))?;

        let organization_id = child_text(notifications, "OrganizationId")
            .ok_or_else(|| common::malformed_payload(PROVIDER, "no OrganizationId"))?;
        if !is_salesforce_id(organization_id) {
            return Err(common::malformed_payload(
                PROVIDER,
                "OrganizationId is not a 15- or 18-character Salesforce id",
            ));
        }
        if !same_id(&self.organization_id, organization_id) {
            return Err(WebhookError::new(
                PROVIDER,
                WebhookRejection::WrongAccount {
                    expected: self.organization_id.clone(),
                    actual: organization_id.to_owned(),
                },
            ));
        }
        let action_id = child_text(notifications, "ActionId");

        notifications
            .children()
            .filter(|node| is_outbound(node, "Notification"))
            .enumerate()
            .map(|(index, notification)| event(index, notification, organization_id, action_id))
            .collect()
    }
}

/// One `Notification` as an event.
fn event(
    index: usize,
    notification: Node<'_, '_>,
    organization_id: &str,
    action_id: Option<&str>,
) -> Result<VerifiedEvent, WebhookError> {
    let notification_id = child_text(notification, "Id").ok_or_else(|| {
        common::malformed_payload(PROVIDER, format!("notification {index} has no Id"))
    })?;
    let sobject = notification
        .children()
        .find(|node| is_outbound(node, "sObject"))
        .ok_or_else(|| {
            common::malformed_payload(PROVIDER, format!("notification {index} has no sObject"))
        })?;
    // `xsi:type` is a QName such as `sf:Account`; the part after the prefix is the sObject type.
    let object_type = sobject
        .attribute((XSI_NAMESPACE, "type"))
        .map(|qualified| qualified.rsplit(':').next().unwrap_or(qualified).to_owned())
        .filter(|object_type| !object_type.is_empty());
    let fields = element_fields(sobject, 0);
    let object_id = fields.get("Id").and_then(Value::as_str).map(str::to_owned);
    Ok(VerifiedEvent {
        provider: PROVIDER,
        dedupe_key: format!("salesforce:{organization_id}:{notification_id}"),
        account_id: Some(organization_id.to_owned()),
        event_type: "outbound_message".to_owned(),
        payload: json!({
            "organizationId": organization_id,
            "actionId": action_id,
            "notificationId": notification_id,
            "objectType": object_type,
            "fields": fields,
        }),
        object_type,
        object_id,
        occurred_at: None,
    })
}

/// An sObject's field elements as a JSON object keyed by local name: text, `null` for
/// `xsi:nil="true"`, or a nested object for a related record.
fn element_fields(element: Node<'_, '_>, depth: usize) -> Map<String, Value> {
    element
        .children()
        .filter(Node::is_element)
        .map(|field| {
            let nested = field.children().any(|child| child.is_element());
            let value = if field.attribute((XSI_NAMESPACE, "nil")) == Some("true") {
                Value::Null
            } else if nested && depth < MAX_FIELD_DEPTH {
                Value::Object(element_fields(field, depth + 1))
            } else {
                Value::String(field.text().unwrap_or_default().to_owned())
            };
            (field.tag_name().name().to_owned(), value)
        })
        .collect()
}

/// Whether `node` is the element `name` of the outbound-message namespace.
fn is_outbound(node: &Node<'_, '_>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && node.tag_name().namespace() == Some(OUTBOUND_NAMESPACE)
}

/// The trimmed, non-empty text of `parent`'s outbound-namespace child `name`.
fn child_text<'a>(parent: Node<'a, '_>, name: &str) -> Option<&'a str> {
    parent
        .children()
        .find(|node| is_outbound(node, name))?
        .text()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// Whether `id` has the shape of a Salesforce id: 15 case-sensitive alphanumerics, or 18 with a
/// case-checksum suffix.
fn is_salesforce_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

/// Whether two well-formed ids name the same record: the first 15 characters are the id; the
/// 3 more of an 18-character id only encode their case.
fn same_id(left: &str, right: &str) -> bool {
    left.get(..15) == right.get(..15)
}

#[cfg(test)]
mod tests;
