//! Each provider's account-info call, answered by a mock in the provider's documented shape.

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::test_support::{api_client, test_data};
use crate::{ProviderError, ProviderKind};

#[tokio::test]
async fn every_provider_validates_to_a_sanitized_account() -> Result<(), ProviderError> {
    let cases = [
        (
            ProviderKind::HubSpot,
            "/account-info/v3/details",
            "account_info.json",
            "62515",
            Some("app.hubspot.com"),
        ),
        (
            ProviderKind::Salesforce,
            "/services/oauth2/userinfo",
            "userinfo.json",
            "00Dxx0000001gPLEAY",
            Some("Ada Admin"),
        ),
        (
            ProviderKind::Stripe,
            "/v1/account",
            "account.json",
            "acct_1Nv0FGQ9RKHgCVdK",
            Some("Acme"),
        ),
        (
            ProviderKind::Zendesk,
            "/api/v2/users/me.json",
            "users_me.json",
            "acme",
            Some("Johnny Agent"),
        ),
        (
            ProviderKind::Intercom,
            "/me",
            "me.json",
            "abc123de",
            Some("Acme Support"),
        ),
        (
            ProviderKind::Gmail,
            "/gmail/v1/users/me/profile",
            "profile.json",
            "ada@example.com",
            Some("ada@example.com"),
        ),
    ];
    for (kind, endpoint, file, account_id, display_name) in cases {
        let server = MockServer::start().await;
        let mut mock = Mock::given(method("GET"))
            .and(path(endpoint))
            .and(header("authorization", "Bearer test-token"));
        mock = match kind {
            ProviderKind::Stripe => mock.and(header("stripe-version", crate::STRIPE_API_VERSION)),
            ProviderKind::Intercom => {
                mock.and(header("intercom-version", crate::INTERCOM_API_VERSION))
            }
            _ => mock,
        };
        mock.respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(test_data(kind, &format!("api/{file}")), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
        let info = api_client(kind, &server.uri()).validate().await?;
        assert_eq!(info.external_account_id, account_id, "{kind}");
        assert_eq!(info.display_name.as_deref(), display_name, "{kind}");
        let details = serde_json::Value::Object(info.details.clone()).to_string();
        assert!(
            !details.contains("token") && !details.contains("email\""),
            "{kind}: {details}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn intercom_reports_its_region_and_hubspot_its_time_zone() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            test_data(ProviderKind::Intercom, "api/me.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let info = api_client(ProviderKind::Intercom, &server.uri())
        .validate()
        .await?;
    assert_eq!(
        info.details.get("region").and_then(|value| value.as_str()),
        Some("EU")
    );
    Ok(())
}

#[tokio::test]
async fn a_response_without_the_account_id_is_a_decode_error_and_401_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"object":"account"}"#))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/gmail/v1/users/me/profile"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let error = api_client(ProviderKind::Stripe, &server.uri())
        .validate()
        .await
        .expect_err("no id");
    assert_eq!(
        error.to_string(),
        "Stripe: unexpected response for GET /v1/account: no `id` in the response"
    );
    let error = api_client(ProviderKind::Gmail, &server.uri())
        .validate()
        .await
        .expect_err("401");
    assert_eq!(
        error,
        ProviderError::Unauthorized {
            provider: ProviderKind::Gmail
        }
    );
}

#[test]
fn stripe_api_keys_are_checked_before_use_without_echoing_them() {
    use secrecy::SecretString;

    use crate::validation::{StripeKeyKind, check_stripe_api_key};
    let key = |text: &str| SecretString::from(text.to_owned());
    assert_eq!(
        check_stripe_api_key(&key("rk_live_51Nv0FGQ9RKHgCVdKabcdef")).ok(),
        Some(StripeKeyKind::Restricted)
    );
    assert_eq!(
        check_stripe_api_key(&key(" sk_test_51Nv0FGQ9RKHgCVdKabcdef\n")).ok(),
        Some(StripeKeyKind::Secret)
    );
    for bad in [
        "pk_live_51Nv0FGQ9RKHgCVdKabcdef",
        "whsec_51Nv0FGQ9RKHgCVdKabcdef",
        "rk_live_short",
        "rk_live_51Nv0FGQ9RK HgCVdKabcdef",
        "hunter2",
    ] {
        let error = check_stripe_api_key(&key(bad)).expect_err("a bad key was accepted");
        assert!(
            matches!(error, ProviderError::Misconfigured { .. }),
            "{bad}: {error}"
        );
        assert!(
            !error.to_string().contains(bad.trim()),
            "{bad} leaked into the error"
        );
    }
}

/// With the identity URL from its token response, Salesforce validates there: org id, user id
/// and a display name (`userinfo` is not called). An identity URL on a foreign host is refused
/// before any call, so the token never leaves Salesforce.
#[tokio::test]
async fn salesforce_validates_at_its_identity_url_and_refuses_a_foreign_one()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    let identity = "/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS";
    Mock::given(method("GET"))
        .and(path(identity))
        .and(header("authorization", "Bearer test-token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            test_data(ProviderKind::Salesforce, "api/identity.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/oauth2/userinfo"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Salesforce, &server.uri())
        .with_identity_url(format!("{}{identity}", server.uri()));
    let info = client.validate().await?;
    assert_eq!(info.external_account_id, "00Dxx0000001gPLEAY");
    assert_eq!(info.display_name.as_deref(), Some("Ada Admin"));
    assert_eq!(info.details["user_id"], "005xx000001SwiUAAS");
    assert_eq!(info.details["username"], "admin@acme.com");
    assert_eq!(info.details["time_zone"], "America/Los_Angeles");
    server.verify().await;

    for foreign in [
        "https://attacker.example.com/id/00D/005",
        "http://login.salesforce.com/id/00D/005",
        "not a url",
    ] {
        let outcome = api_client(ProviderKind::Salesforce, &server.uri())
            .with_identity_url(foreign)
            .validate()
            .await;
        assert!(
            matches!(
                outcome,
                Err(ProviderError::Misconfigured {
                    provider: ProviderKind::Salesforce,
                    ..
                })
            ),
            "{foreign}: {outcome:?}"
        );
    }
    // A malformed identity answer is a decode error naming Salesforce.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"user_id": "005"})),
        )
        .mount(&server)
        .await;
    let outcome = api_client(ProviderKind::Salesforce, &server.uri())
        .with_identity_url(format!("{}{identity}", server.uri()))
        .validate()
        .await;
    assert!(
        matches!(
            outcome,
            Err(ProviderError::Decode {
                provider: ProviderKind::Salesforce,
                ..
            })
        ),
        "{outcome:?}"
    );
    Ok(())
}

/// The documented detail keys are the ones validation keeps, and Salesforce's identity URL keeps
/// the same keys as `userinfo`.
#[test]
fn detail_keys_are_documented_per_provider() {
    let documented = [
        (
            ProviderKind::HubSpot,
            &[
                "account_type",
                "time_zone",
                "currency",
                "data_hosting_location",
            ][..],
        ),
        (
            ProviderKind::Salesforce,
            &["user_id", "username", "locale", "time_zone"],
        ),
        (
            ProviderKind::Stripe,
            &["country", "default_currency", "charges_enabled", "type"],
        ),
        (ProviderKind::Zendesk, &["user_id", "role", "time_zone"]),
        (ProviderKind::Intercom, &["region", "time_zone", "admin_id"]),
        (ProviderKind::Gmail, &["history_id", "messages_total"]),
    ];
    for (kind, keys) in documented {
        assert_eq!(crate::AccountInfo::detail_keys(kind), keys, "{kind}");
    }
    let identity: Vec<&str> = crate::salesforce::IDENTITY
        .details
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(
        identity,
        crate::AccountInfo::detail_keys(ProviderKind::Salesforce)
    );
}
