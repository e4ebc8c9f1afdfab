//! Checking mapped field names against mocks answering in each provider's documented schema shape,
//! and against the documented lists where there is no schema API.

use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::test_support::{api_client, test_data};
use crate::{ProviderError, ProviderKind};

fn body(kind: ProviderKind, file: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_raw(test_data(kind, &format!("api/{file}")), "application/json")
}

fn names(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|field| (*field).to_owned()).collect()
}

fn assert_decode(result: Result<Vec<String>, ProviderError>, kind: ProviderKind) {
    match result {
        Err(ProviderError::Decode { provider, .. }) => assert_eq!(provider, kind),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

/// A server answering `route` once with `template`.
async fn serve_once(route: &str, template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn hubspot_checks_every_field_with_one_properties_call() -> Result<(), ProviderError> {
    let server = serve_once(
        "/crm/v3/properties/contacts",
        body(ProviderKind::HubSpot, "properties_contacts.json"),
    )
    .await;
    let client = api_client(ProviderKind::HubSpot, &server.uri());
    let missing = client
        .missing_fields(
            "contacts",
            &names(&["email", "my_contact_property", "lifecyclestage", "email"]),
        )
        .await?;
    assert!(missing.is_empty(), "{missing:?}");
    Ok(())
}

#[tokio::test]
async fn hubspot_returns_the_fields_it_lacks() -> Result<(), ProviderError> {
    let server = serve_once(
        "/crm/v3/properties/contacts",
        body(ProviderKind::HubSpot, "properties_contacts.json"),
    )
    .await;
    let client = api_client(ProviderKind::HubSpot, &server.uri());
    let missing = client
        .missing_fields(
            "contacts",
            &names(&["made_up_field", "email", "Email", "made_up_field"]),
        )
        .await?;
    assert_eq!(missing, names(&["made_up_field", "Email"]));
    Ok(())
}

#[tokio::test]
async fn hubspot_malformed_properties_are_a_decode_error() {
    let server = serve_once(
        "/crm/v3/properties/deals",
        ResponseTemplate::new(200).set_body_string(r#"{"properties":[{"name":"amount"}]}"#),
    )
    .await;
    let client = api_client(ProviderKind::HubSpot, &server.uri());
    assert_decode(
        client.missing_fields("deals", &names(&["amount"])).await,
        ProviderKind::HubSpot,
    );
}

#[tokio::test]
async fn salesforce_matches_names_in_any_case_and_relationship_paths() -> Result<(), ProviderError>
{
    let server = serve_once(
        "/services/data/v62.0/sobjects/Account/describe",
        body(ProviderKind::Salesforce, "account_describe.json"),
    )
    .await;
    let client = api_client(ProviderKind::Salesforce, &server.uri());
    let missing = client
        .missing_fields(
            "Account",
            &names(&[
                "Industry",
                "industry",
                "TIER__C",
                "Owner.Name",
                "parent.Owner.Email",
            ]),
        )
        .await?;
    assert!(missing.is_empty(), "{missing:?}");
    Ok(())
}

#[tokio::test]
async fn salesforce_returns_the_fields_and_relationships_it_lacks() -> Result<(), ProviderError> {
    let server = serve_once(
        "/services/data/v62.0/sobjects/Account/describe",
        body(ProviderKind::Salesforce, "account_describe.json"),
    )
    .await;
    let client = api_client(ProviderKind::Salesforce, &server.uri());
    let missing = client
        .missing_fields(
            "Account",
            &names(&[
                "Name",
                "Made_Up__c",
                "Owner",
                "Ghost.Name",
                "Owner.",
                "ChildAccounts.Name",
            ]),
        )
        .await?;
    // `Owner` is a relationship, not a field; `ChildAccounts` is a child relationship, which a
    // field path cannot follow.
    assert_eq!(
        missing,
        names(&[
            "Made_Up__c",
            "Owner",
            "Ghost.Name",
            "Owner.",
            "ChildAccounts.Name"
        ])
    );
    Ok(())
}

#[tokio::test]
async fn salesforce_malformed_describe_is_a_decode_error() {
    let server = serve_once(
        "/services/data/v62.0/sobjects/Lead/describe",
        ResponseTemplate::new(200).set_body_string(r#"{"name":"Lead","fields":{"Email":{}}}"#),
    )
    .await;
    let client = api_client(ProviderKind::Salesforce, &server.uri());
    assert_decode(
        client.missing_fields("Lead", &names(&["Email"])).await,
        ProviderKind::Salesforce,
    );
}

#[tokio::test]
async fn zendesk_standard_fields_need_no_call() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Zendesk, &server.uri());
    let missing = client
        .missing_fields(
            "tickets",
            &names(&["subject", "status", "custom_fields", "made_up"]),
        )
        .await?;
    assert_eq!(missing, names(&["made_up"]));
    Ok(())
}

#[tokio::test]
async fn zendesk_ticket_custom_fields_are_checked_by_id_with_one_call() -> Result<(), ProviderError>
{
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/ticket_fields"))
        .and(query_param("page[size]", "100"))
        .respond_with(body(ProviderKind::Zendesk, "ticket_fields.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Zendesk, &server.uri());
    let missing = client
        .missing_fields(
            "tickets",
            &names(&[
                "custom_field_360000001",
                "custom_fields.360000002",
                "priority",
                "custom_field_999",
                "custom_field_",
                "user_fields.plan",
            ]),
        )
        .await?;
    assert_eq!(
        missing,
        names(&["custom_field_999", "custom_field_", "user_fields.plan"])
    );
    Ok(())
}

#[tokio::test]
async fn zendesk_user_fields_follow_the_cursor() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/user_fields"))
        .and(query_param_is_missing("page[after]"))
        .respond_with(body(ProviderKind::Zendesk, "user_fields_page1.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/user_fields"))
        .and(query_param("page[after]", "xxx"))
        .respond_with(body(ProviderKind::Zendesk, "user_fields_page2.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Zendesk, &server.uri());
    let missing = client
        .missing_fields(
            "users",
            &names(&[
                "email",
                "user_fields.support_description",
                "user_fields.plan",
                "user_fields.shoe_size",
            ]),
        )
        .await?;
    assert_eq!(missing, names(&["user_fields.shoe_size"]));
    Ok(())
}

#[tokio::test]
async fn zendesk_malformed_field_list_is_a_decode_error() {
    let server = serve_once(
        "/api/v2/organization_fields",
        ResponseTemplate::new(200)
            .set_body_string(r#"{"organization_fields":[{"id":1,"title":"No key"}]}"#),
    )
    .await;
    let client = api_client(ProviderKind::Zendesk, &server.uri());
    assert_decode(
        client
            .missing_fields("organizations", &names(&["organization_fields.region"]))
            .await,
        ProviderKind::Zendesk,
    );
}

#[tokio::test]
async fn intercom_checks_properties_and_data_attributes_with_one_call() -> Result<(), ProviderError>
{
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/data_attributes"))
        .and(query_param("model", "contact"))
        .respond_with(body(ProviderKind::Intercom, "data_attributes_contact.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Intercom, &server.uri());
    let missing = client
        .missing_fields(
            "contacts",
            &names(&[
                "email",
                "custom_attributes.paid_subscriber",
                "location.city",
                "custom_attributes",
                "custom_attributes.shoe_size",
                "paid_subscriber",
            ]),
        )
        .await?;
    assert_eq!(
        missing,
        names(&["custom_attributes.shoe_size", "paid_subscriber"])
    );
    Ok(())
}

#[tokio::test]
async fn intercom_malformed_data_attributes_are_a_decode_error() {
    let server = serve_once(
        "/data_attributes",
        ResponseTemplate::new(200).set_body_string(r#"{"type":"list","data":[{"label":"Plan"}]}"#),
    )
    .await;
    let client = api_client(ProviderKind::Intercom, &server.uri());
    assert_decode(
        client.missing_fields("companies", &names(&["plan"])).await,
        ProviderKind::Intercom,
    );
}

#[tokio::test]
async fn stripe_checks_documented_fields_and_metadata_without_a_call() -> Result<(), ProviderError>
{
    // Nothing listens here: a request would fail with a transport error.
    let client = api_client(ProviderKind::Stripe, "http://127.0.0.1:9");
    let missing = client
        .missing_fields(
            "customers",
            &names(&[
                "email",
                "name",
                "metadata",
                "metadata.plan",
                "metadata.",
                "amount",
            ]),
        )
        .await?;
    assert_eq!(missing, names(&["metadata.", "amount"]));
    let missing = client
        .missing_fields(
            "charges",
            &names(&["amount", "receipt_email", "metadata.order_id", "email"]),
        )
        .await?;
    assert_eq!(missing, names(&["email"]));
    let missing = client
        .missing_fields("invoices", &names(&["amount_due", "customer_email"]))
        .await?;
    assert!(missing.is_empty(), "{missing:?}");
    Ok(())
}

#[tokio::test]
async fn gmail_headers_are_free_form() -> Result<(), ProviderError> {
    let client = api_client(ProviderKind::Gmail, "http://127.0.0.1:9");
    let missing = client
        .missing_fields("messages", &names(&["X-Custom-Header", "Reply-To"]))
        .await?;
    assert!(missing.is_empty());
    Ok(())
}

#[tokio::test]
async fn no_fields_need_no_call() -> Result<(), ProviderError> {
    for kind in [
        ProviderKind::HubSpot,
        ProviderKind::Salesforce,
        ProviderKind::Intercom,
    ] {
        let client = api_client(kind, "http://127.0.0.1:9");
        let object = client.objects()[0];
        assert!(
            client.missing_fields(object, &[]).await?.is_empty(),
            "{kind}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_unknown_object_type_is_misconfigured() {
    for (kind, object) in [
        (ProviderKind::HubSpot, "tickets"),
        (ProviderKind::Salesforce, "account"),
        (ProviderKind::Stripe, "subscriptions"),
        (ProviderKind::Zendesk, "groups"),
        (ProviderKind::Intercom, "contact"),
        (ProviderKind::Gmail, "threads"),
    ] {
        let client = api_client(kind, "http://127.0.0.1:9");
        match client.missing_fields(object, &names(&["id"])).await {
            Err(ProviderError::Misconfigured { provider, reason }) => {
                assert_eq!(provider, kind);
                assert!(reason.contains(object), "{reason}");
            }
            other => panic!("{kind}: expected misconfigured, got {other:?}"),
        }
    }
}
