//! Registering per-account webhooks against mocks in Stripe's and Zendesk's documented shapes.

use secrecy::ExposeSecret as _;
use wiremock::matchers::{body_partial_json, body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::test_support::api_client;
use crate::{ProviderError, ProviderKind};

#[tokio::test]
async fn stripe_returns_the_endpoint_secret_at_creation() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/webhook_endpoints"))
        .and(body_string_contains("url=https%3A%2F%2Fplatform.example.com%2Fwebhooks%2Fstripe%2Fc1"))
        .and(body_string_contains("enabled_events%5B%5D=customer.updated"))
        .and(body_string_contains("api_version=2026-08-26.dahlia"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "we_1Mr5jULkdIwHu7ix1ibLTM0x", "object": "webhook_endpoint", "secret": "whsec_test_secret",
            "status": "enabled", "url": "https://platform.example.com/webhooks/stripe/c1", "enabled_events": ["customer.updated"]
        })))
        .expect(1).mount(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/v1/webhook_endpoints/we_1Mr5jULkdIwHu7ix1ibLTM0x"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"id":"we_1Mr5jULkdIwHu7ix1ibLTM0x","deleted":true}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Stripe, &server.uri());
    let registration = client
        .register_webhook("https://platform.example.com/webhooks/stripe/c1")
        .await?
        .ok_or(ProviderError::NotFound {
            provider: ProviderKind::Stripe,
            what: "registration".to_owned(),
        })?;
    assert_eq!(registration.id, "we_1Mr5jULkdIwHu7ix1ibLTM0x");
    assert_eq!(registration.secret.expose_secret(), "whsec_test_secret");
    assert!(!format!("{registration:?}").contains("whsec_test_secret"));
    client.unregister_webhook(&registration.id).await?;
    Ok(())
}

#[tokio::test]
async fn zendesk_creates_the_webhook_then_reads_its_signing_secret() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/api/v2/webhooks"))
        .and(body_partial_json(serde_json::json!({"webhook": {"endpoint": "https://platform.example.com/webhooks/zendesk/c2", "http_method": "POST", "request_format": "json"}})))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"webhook": {"id": "01GDXYD7ZTWYP7NPEE1NTFR3M2", "name": "Integration platform sync", "status": "active"}})))
        .expect(1).mount(&server).await;
    Mock::given(method("GET")).and(path("/api/v2/webhooks/01GDXYD7ZTWYP7NPEE1NTFR3M2/signing_secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"signing_secret": {"algorithm": "SHA256", "secret": "dyHbSXGpyN1Htwu8IX1ohEQuwAa7YRpLiCWsfp5Pzik="}})))
        .expect(1).mount(&server).await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Zendesk, &server.uri());
    let registration = client
        .register_webhook("https://platform.example.com/webhooks/zendesk/c2")
        .await?
        .ok_or(ProviderError::NotFound {
            provider: ProviderKind::Zendesk,
            what: "registration".to_owned(),
        })?;
    assert_eq!(
        registration.secret.expose_secret(),
        "dyHbSXGpyN1Htwu8IX1ohEQuwAa7YRpLiCWsfp5Pzik="
    );
    client.unregister_webhook(&registration.id).await?;
    Ok(())
}

#[tokio::test]
async fn providers_with_app_level_webhooks_register_nothing() -> Result<(), ProviderError> {
    for kind in [
        ProviderKind::HubSpot,
        ProviderKind::Intercom,
        ProviderKind::Gmail,
        ProviderKind::Salesforce,
    ] {
        let client = api_client(kind, "http://127.0.0.1:9");
        assert!(!client.registers_webhooks());
        assert!(
            client
                .register_webhook("https://platform.example.com/x")
                .await?
                .is_none(),
            "{kind}"
        );
    }
    Ok(())
}
