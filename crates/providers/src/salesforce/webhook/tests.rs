//! Salesforce outbound messages: one event per notification for the expected org (15- and
//! 18-character ids alike), other orgs and malformed SOAP rejected, and the acknowledgement.

#![allow(clippy::unwrap_used)]

use http::HeaderMap;
use serde_json::Value;

use super::{SalesforceVerifier, salesforce_acknowledgement};
use crate::ProviderKind;
use crate::test_support::webhooks::{dedupe_keys, now, post, rejection};
use crate::webhooks::{VerifiedEvent, WebhookError, WebhookRejection};

const MESSAGE: &str =
    include_str!("../../../test_data/salesforce/webhooks/outbound_message_two_accounts.xml");
const ORG_ID_18: &str = "00D5g000004FQvXEAW";
const ORG_ID_15: &str = "00D5g000004FQvX";

fn verify(organization_id: &str, body: &str) -> Result<Vec<VerifiedEvent>, WebhookError> {
    let headers = HeaderMap::new();
    SalesforceVerifier::new(organization_id)
        .unwrap()
        .verify(&post(&headers, body.as_bytes()), now())
}

#[test]
fn each_notification_becomes_an_event_keyed_by_org_and_notification_id() {
    let events = verify(ORG_ID_18, MESSAGE).unwrap();
    assert_eq!(
        dedupe_keys(&events),
        [
            "salesforce:00D5g000004FQvXEAW:04l5g00000NRxVZAA1",
            "salesforce:00D5g000004FQvXEAW:04l5g00000NRxVaAAL"
        ]
    );
    for event in &events {
        assert_eq!(event.provider, ProviderKind::Salesforce);
        assert_eq!(event.account_id.as_deref(), Some(ORG_ID_18));
        assert_eq!(event.event_type, "outbound_message");
        assert_eq!(event.object_type.as_deref(), Some("Account"));
        assert_eq!(event.payload["actionId"], "04k5g000000CaRmAAK");
    }
    assert_eq!(events[0].object_id.as_deref(), Some("0015g00000XyZaBAAV"));
    assert_eq!(events[1].object_id.as_deref(), Some("0015g00000XyZbCAAV"));
    assert_eq!(events[0].payload["fields"]["Industry"], "Manufacturing");
    // Entities are decoded and `xsi:nil` fields are null.
    assert_eq!(events[1].payload["fields"]["Name"], "Globex & Sons");
    assert_eq!(events[1].payload["fields"]["Industry"], Value::Null);
}

#[test]
fn a_fifteen_character_org_id_matches_the_eighteen_character_one_and_back() {
    assert_eq!(verify(ORG_ID_15, MESSAGE).unwrap().len(), 2);
    let with_short_id = MESSAGE.replace(ORG_ID_18, ORG_ID_15);
    assert_eq!(verify(ORG_ID_18, &with_short_id).unwrap().len(), 2);
}

#[test]
fn a_message_from_another_org_is_rejected() {
    assert_eq!(
        rejection(verify("00D5g000004FQvYEAW", MESSAGE)),
        WebhookRejection::WrongAccount {
            expected: "00D5g000004FQvYEAW".to_owned(),
            actual: ORG_ID_18.to_owned(),
        }
    );
    // The 15-character id is case-sensitive: `x` is not `X`.
    assert!(matches!(
        rejection(verify("00D5g000004FQvx", MESSAGE)),
        WebhookRejection::WrongAccount { .. }
    ));
}

#[test]
fn the_session_id_is_kept_out_of_the_payload() {
    let with_session = MESSAGE.replace(
        r#"<SessionId xsi:nil="true"/>"#,
        "<SessionId>00D5g000004FQvX!AQcAQH0dMHZfz972Szmpsb</SessionId>",
    );
    let events = verify(ORG_ID_18, &with_session).unwrap();
    for event in events {
        assert!(!event.payload.to_string().contains("AQcAQH0dMHZfz972Szmpsb"));
    }
}

#[test]
fn an_org_id_that_is_not_a_salesforce_id_is_a_configuration_error() {
    for organization_id in ["", "00D5g", "00D5g000004FQvXEA", "00D5g000004FQv-EAW"] {
        let error = SalesforceVerifier::new(organization_id).unwrap_err();
        assert!(matches!(
            error.reason,
            WebhookRejection::InvalidConfiguration(_)
        ));
    }
}

#[test]
fn bodies_that_are_not_outbound_messages_are_malformed() {
    let without_org = MESSAGE.replace("<OrganizationId>00D5g000004FQvXEAW</OrganizationId>", "");
    let without_notification_id = MESSAGE.replace("<Id>04l5g00000NRxVZAA1</Id>", "");
    let bad_org = MESSAGE.replace(ORG_ID_18, "not an org id");
    let other_namespace = MESSAGE.replace(
        "http://soap.sforce.com/2005/09/outbound",
        "http://example.com/not-salesforce",
    );
    let with_entities = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&lol2;</OrganizationId></notifications>"#;
    let bodies = [
        ("", "empty"),
        ("{\"not\":\"xml\"}", "json"),
        ("<unclosed>", "unclosed"),
        (without_org.as_str(), "no org"),
        (without_notification_id.as_str(), "no notification id"),
        (bad_org.as_str(), "bad org"),
        (other_namespace.as_str(), "other namespace"),
        (with_entities, "a DTD"),
    ];
    for (body, case) in bodies {
        assert!(
            matches!(
                rejection(verify(ORG_ID_18, body)),
                WebhookRejection::MalformedPayload(_)
            ),
            "{case}"
        );
    }
}

#[test]
fn a_body_that_is_not_utf8_is_malformed() {
    let headers = HeaderMap::new();
    let result = SalesforceVerifier::new(ORG_ID_18)
        .unwrap()
        .verify(&post(&headers, &[0x3c, 0xff, 0xfe, 0x3e]), now());
    assert_eq!(
        rejection(result),
        WebhookRejection::MalformedPayload("body is not UTF-8".to_owned())
    );
}

#[test]
fn the_acknowledgement_is_a_soap_notifications_response_with_ack_true() {
    let document = roxmltree::Document::parse(salesforce_acknowledgement()).unwrap();
    let envelope = document.root_element();
    assert_eq!(envelope.tag_name().name(), "Envelope");
    assert_eq!(
        envelope.tag_name().namespace(),
        Some("http://schemas.xmlsoap.org/soap/envelope/")
    );
    let response = document
        .descendants()
        .find(|node| node.tag_name().name() == "notificationsResponse")
        .unwrap();
    assert_eq!(
        response.tag_name().namespace(),
        Some("http://soap.sforce.com/2005/09/outbound")
    );
    let ack = response
        .children()
        .find(|node| node.tag_name().name() == "Ack")
        .unwrap();
    assert_eq!(ack.text(), Some("true"));
}
