//! The dispatch reaches each provider's own adapter, and the hooks the shared core asks answer
//! per provider.

use crate::ProviderKind;
use crate::dispatch::dispatch;
use crate::transport::Throttle;

#[test]
fn every_kind_dispatches_to_its_own_adapter() {
    for kind in ProviderKind::ALL {
        let (adapter_kind, spec_kind, objects) = dispatch!(kind, adapter => {
            (kind_of(adapter), adapter.spec().kind, adapter.objects())
        });
        assert_eq!(adapter_kind, kind);
        assert_eq!(spec_kind, kind);
        assert_eq!(objects, crate::objects(kind), "{kind}");
        assert!(!objects.is_empty(), "{kind}");
    }
}

fn kind_of<A: super::Adapter>(_adapter: A) -> ProviderKind {
    A::KIND
}

#[test]
fn exactly_the_providers_that_register_webhooks_can_delete_them() {
    let registering: Vec<ProviderKind> = ProviderKind::ALL
        .into_iter()
        .filter(|kind| dispatch!(*kind, adapter => adapter.registers_webhooks()))
        .collect();
    assert_eq!(registering, [ProviderKind::Stripe, ProviderKind::Zendesk]);
    for kind in ProviderKind::ALL {
        let path = dispatch!(kind, adapter => adapter.webhook_path("we_123"));
        assert_eq!(path.is_some(), registering.contains(&kind), "{kind}");
        if let Some(path) = path {
            assert!(path.ends_with("/we_123"), "{kind}: {path}");
        }
    }
}

#[test]
fn only_the_provider_that_sends_a_body_reads_it_as_a_throttle() {
    let cases: [(u16, &[u8], ProviderKind, Throttle); 3] = [
        (
            429,
            br#"{"status":"error","policyName":"DAILY"}"#,
            ProviderKind::HubSpot,
            Throttle::Quota,
        ),
        (
            403,
            br#"[{"errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
            ProviderKind::Salesforce,
            Throttle::Quota,
        ),
        (
            403,
            br#"{"error":{"errors":[{"reason":"userRateLimitExceeded"}]}}"#,
            ProviderKind::Gmail,
            Throttle::RateLimited,
        ),
    ];
    for (status, body, owner, expected) in cases {
        for kind in ProviderKind::ALL {
            let throttle = dispatch!(kind, adapter => adapter.throttle(status, body));
            let wanted = (kind == owner).then_some(expected);
            assert_eq!(throttle, wanted, "{kind} reading {owner}'s {status}");
        }
        // The same body under another status is the status's own business.
        let other = dispatch!(owner, adapter => adapter.throttle(400, body));
        assert_eq!(other, None, "{owner}");
    }
}
