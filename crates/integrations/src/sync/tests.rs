//! Field paths reach nested provider values the way custom mappings name them.

use serde_json::json;

use super::field_value;

#[test]
fn dotted_paths_follow_objects_and_arrays_of_id_value_items() {
    let record = json!({
        "email": "ada@example.com",
        "custom_attributes": {"plan": "pro"},
        "Owner": {"Name": "Grace"},
        "custom_fields": [{"id": 360001234, "value": "gold"}, {"id": "abc", "value": null}],
        "a.b": "literal key wins"
    });
    let fields = record.as_object().cloned().unwrap_or_default();
    assert_eq!(
        field_value(&fields, "email"),
        Some(&json!("ada@example.com"))
    );
    assert_eq!(
        field_value(&fields, "custom_attributes.plan"),
        Some(&json!("pro"))
    );
    assert_eq!(field_value(&fields, "Owner.Name"), Some(&json!("Grace")));
    assert_eq!(
        field_value(&fields, "custom_fields.360001234"),
        Some(&json!("gold"))
    );
    assert_eq!(
        field_value(&fields, "custom_fields.abc"),
        Some(&json!(null))
    );
    assert_eq!(
        field_value(&fields, "a.b"),
        Some(&json!("literal key wins"))
    );
    assert_eq!(field_value(&fields, "custom_attributes.missing"), None);
    assert_eq!(field_value(&fields, "email.domain"), None);
}

/// History keeps no member whose key names a secret, at any depth, and nothing else is touched.
#[test]
fn history_values_lose_secret_members_at_any_depth() {
    let value = json!({
        "name": "Acme",
        "api_key": "sk_live_x",
        "nested": {"accessToken": "t", "plan": "pro", "list": [{"password": "p", "ok": 1}]},
        "Client_Secret": "s"
    });
    assert_eq!(
        crate::sanitized_value(&value),
        json!({"name": "Acme", "nested": {"plan": "pro", "list": [{"ok": 1}]}})
    );
    assert_eq!(crate::sanitized_value(&json!("a token")), json!("a token"));
}

/// The schedule analyzes early and often while a table is young, then every `every` entities.
#[test]
fn analyze_runs_after_a_thousand_rows_at_each_doubling_then_every_n() {
    // Each `ANALYZE` here ends before the next page.
    let due = |schedule: &super::AnalyzeSchedule, created: u32| {
        let due = schedule.grew(created);
        if due {
            assert!(!schedule.finished(), "nothing came due while it ran");
        }
        due
    };
    let schedule = super::AnalyzeSchedule::every(50_000);
    let mut analyzed_at = Vec::new();
    for page in 1..=1_500_u64 {
        if due(&schedule, 100) {
            analyzed_at.push(page * 100);
        }
    }
    assert_eq!(
        analyzed_at,
        [
            1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 50_000, 100_000, 150_000
        ]
    );
    // A page larger than several steps counts once.
    let schedule = super::AnalyzeSchedule::every(50_000);
    assert!(due(&schedule, 10_000));
    assert!(!due(&schedule, 5_000));
    assert!(due(&schedule, 1_000));
    let never = super::AnalyzeSchedule::every(0);
    assert!(!never.grew(u32::MAX));
    let small = super::AnalyzeSchedule::every(2);
    assert!(!small.grew(1));
    assert!(small.grew(1));
    // Due again while it runs: no second one starts; the running one runs once more, then stops.
    assert!(!small.grew(2));
    assert!(!small.grew(2));
    assert!(small.finished(), "it runs again");
    assert!(!small.finished(), "then it is done");
    assert!(small.grew(2), "and the next due one starts");
}
