//! The merge rules, case by case, without a database.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, TimeZone as _, Utc};
use providers::Record;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Existing, ExistingEntity, Origin, PagePlan, PlanInput, plan};

const INTEGRATION: Uuid = Uuid::from_u128(1);
const OTHER_INTEGRATION: Uuid = Uuid::from_u128(2);
const ENTITY: Uuid = Uuid::from_u128(10);
const NEW_ENTITY: Uuid = Uuid::from_u128(11);
const EMAIL: Uuid = Uuid::from_u128(20);

fn at(minute: u32) -> DateTime<FixedOffset> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, minute, 0)
        .single()
        .map(|time| time.fixed_offset())
        .unwrap_or_default()
}

fn record(id: &str, email: Option<&str>, minute: Option<u32>, deleted: bool) -> Record {
    let mut fields = serde_json::Map::new();
    if let Some(email) = email {
        fields.insert("email".to_owned(), json!(email));
    }
    Record {
        external_id: id.to_owned(),
        object_type: "contacts".to_owned(),
        updated_at: minute.map(|minute| at(minute).to_utc()),
        deleted,
        fields,
        source_url: None,
    }
}

/// What the database holds for entity `ENTITY` (external id `c1`).
struct Held {
    archived: bool,
    value: Option<&'static str>,
    from: Option<Uuid>,
    field: &'static str,
    minute: u32,
    overridden: bool,
    /// The shadow value kept under an override, observed at `observed_minute`.
    observed: Option<&'static str>,
    observed_minute: u32,
}

const HELD: Held = Held {
    archived: false,
    value: Some("old@example.com"),
    from: Some(INTEGRATION),
    field: "email",
    minute: 30,
    overridden: false,
    observed: None,
    observed_minute: 30,
};

fn existing(held: Option<&Held>) -> Existing {
    let mut out = Existing::default();
    let Some(held) = held else {
        return out;
    };
    out.entities.insert(
        "c1".to_owned(),
        ExistingEntity {
            id: ENTITY,
            archived: held.archived,
            // The name the engine derives from the held email.
            display_name: held.value.map(str::to_owned),
            source_url: None,
        },
    );
    if let Some(value) = held.value {
        out.values.insert((ENTITY, EMAIL), json!(value));
        out.origins.insert(
            (ENTITY, EMAIL),
            Origin {
                source_integration_id: held.from,
                source_external_field: Some(held.field.to_owned()),
                last_updated_at: at(held.minute),
                override_by_user: held.overridden,
                observed_value: held.observed.map(|value| json!(value)),
                observed_external_field: held.observed.map(|_| "email".to_owned()),
                observed_updated_at: held.observed.map(|_| at(held.observed_minute)),
            },
        );
    }
    out
}

/// (what the plan wrote as values, created, updated, deleted, unchanged, conflicts, archived,
/// pinned)
type Outcome = (Vec<Value>, [u32; 5], usize, usize);

fn run(held: Option<&Held>, records: Vec<Record>) -> (PagePlan, Outcome) {
    let fields = BTreeMap::from([("email".to_owned(), "email".to_owned())]);
    let attribute_ids = HashMap::from([("email".to_owned(), EMAIL)]);
    let input = PlanInput {
        integration_id: INTEGRATION,
        fields: &fields,
        attribute_ids: &attribute_ids,
        now: at(59),
    };
    let planned = plan(&input, records, &existing(held), || NEW_ENTITY);
    let counts = &planned.counts;
    let outcome = (
        planned
            .values
            .iter()
            .map(|write| write.value.clone())
            .collect(),
        [
            counts.created,
            counts.updated,
            counts.deleted,
            counts.unchanged,
            counts.conflicts,
        ],
        planned.archive.len(),
        planned.pinned.len(),
    );
    (planned, outcome)
}

#[test]
fn each_rule_decides_as_documented() {
    let new = || json!("new@example.com");
    let cases: Vec<(&str, Option<Held>, Vec<Record>, Outcome)> = vec![
        (
            "a record never seen is created with its values",
            None,
            vec![record("c1", Some("new@example.com"), Some(40), false)],
            (vec![new()], [1, 0, 0, 0, 0], 0, 0),
        ),
        (
            "a newer provider value overwrites",
            Some(HELD),
            vec![record("c1", Some("new@example.com"), Some(40), false)],
            (vec![new()], [0, 1, 0, 0, 0], 0, 0),
        ),
        (
            "the same value from the same field writes nothing",
            Some(HELD),
            vec![record("c1", Some("old@example.com"), Some(40), false)],
            (vec![], [0, 0, 0, 1, 0], 0, 0),
        ),
        (
            "the same value from another field is rewritten (its provenance moves)",
            Some(Held {
                field: "work_email",
                ..HELD
            }),
            vec![record("c1", Some("old@example.com"), Some(40), false)],
            (vec![json!("old@example.com")], [0, 1, 0, 0, 0], 0, 0),
        ),
        (
            "an older snapshot from the same integration loses",
            Some(HELD),
            vec![record("c1", Some("new@example.com"), Some(10), false)],
            (vec![], [0, 0, 0, 1, 0], 0, 0),
        ),
        (
            "an older snapshot from another integration still writes",
            Some(Held {
                from: Some(OTHER_INTEGRATION),
                ..HELD
            }),
            vec![record("c1", Some("new@example.com"), Some(10), false)],
            (vec![new()], [0, 1, 0, 0, 0], 0, 0),
        ),
        (
            "a record without a modification time is never stale",
            Some(HELD),
            vec![record("c1", Some("new@example.com"), None, false)],
            (vec![new()], [0, 1, 0, 0, 0], 0, 0),
        ),
        (
            "an override wins and a different value is a conflict",
            Some(Held {
                overridden: true,
                ..HELD
            }),
            vec![record("c1", Some("new@example.com"), Some(40), false)],
            (vec![], [0, 0, 0, 1, 1], 0, 1),
        ),
        (
            "an override keeps no second copy of the shadow value it already has",
            Some(Held {
                overridden: true,
                observed: Some("new@example.com"),
                ..HELD
            }),
            vec![record("c1", Some("new@example.com"), Some(40), false)],
            (vec![], [0, 0, 0, 1, 1], 0, 0),
        ),
        (
            "an older provider value under an override does not replace the shadow value",
            Some(Held {
                overridden: true,
                observed: Some("newest@example.com"),
                observed_minute: 50,
                ..HELD
            }),
            vec![record("c1", Some("new@example.com"), Some(40), false)],
            (vec![], [0, 0, 0, 1, 1], 0, 0),
        ),
        (
            "a newer provider value under an override replaces the shadow value",
            Some(Held {
                overridden: true,
                observed: Some("older@example.com"),
                observed_minute: 20,
                ..HELD
            }),
            vec![record("c1", Some("new@example.com"), Some(40), false)],
            (vec![], [0, 0, 0, 1, 1], 0, 1),
        ),
        (
            "an override agreeing with the provider is no conflict",
            Some(Held {
                overridden: true,
                ..HELD
            }),
            vec![record("c1", Some("old@example.com"), Some(40), false)],
            (vec![], [0, 0, 0, 1, 0], 0, 1),
        ),
        (
            "a deleted record archives its entity",
            Some(HELD),
            vec![record("c1", None, Some(40), true)],
            (vec![], [0, 0, 1, 0, 0], 1, 0),
        ),
        (
            "a deleted record of an archived entity changes nothing",
            Some(Held {
                archived: true,
                ..HELD
            }),
            vec![record("c1", None, Some(40), true)],
            (vec![], [0, 0, 0, 1, 0], 0, 0),
        ),
        (
            "a deleted record never seen changes nothing",
            None,
            vec![record("c1", None, Some(40), true)],
            (vec![], [0, 0, 0, 1, 0], 0, 0),
        ),
        (
            "a live record of an archived entity unarchives it even with the same value",
            Some(Held {
                archived: true,
                ..HELD
            }),
            vec![record("c1", Some("old@example.com"), Some(40), false)],
            (vec![], [0, 1, 0, 0, 0], 0, 0),
        ),
        (
            "the last version of a record in a page wins",
            Some(HELD),
            vec![
                record("c1", Some("first@example.com"), Some(40), false),
                record("c1", Some("new@example.com"), Some(41), false),
            ],
            (vec![new()], [0, 1, 0, 0, 0], 0, 0),
        ),
        (
            "a record without the mapped field writes no value",
            Some(HELD),
            vec![record("c1", None, Some(40), false)],
            (vec![], [0, 0, 0, 1, 0], 0, 0),
        ),
    ];
    for (name, held, records, expected) in cases {
        let (_, outcome) = run(held.as_ref(), records);
        assert_eq!(outcome, expected, "{name}");
    }
}

#[test]
fn writes_carry_the_provider_time_and_field_and_entities_their_version_step() {
    let (planned, _) = run(
        Some(&HELD),
        vec![
            record("c1", Some("new@example.com"), Some(40), false),
            record("c2", Some("two@example.com"), None, false),
        ],
    );
    let [existing_write, new_write] = planned.values.as_slice() else {
        panic!("two writes expected, got {:?}", planned.values);
    };
    assert_eq!(
        (existing_write.entity_id, existing_write.observed_at),
        (ENTITY, at(40))
    );
    // No modification time: the plan's now.
    assert_eq!(
        (new_write.entity_id, new_write.observed_at),
        (NEW_ENTITY, at(59))
    );
    assert_eq!(new_write.external_field, "email");
    let steps: Vec<(Uuid, bool, bool)> = planned
        .entities
        .iter()
        .map(|entity| (entity.id, entity.created, entity.changed))
        .collect();
    assert_eq!(steps, vec![(ENTITY, false, true), (NEW_ENTITY, true, true)]);
    assert_eq!(planned.newest, Some(at(40)));
    assert_eq!(
        planned.entities[1].display_name.as_deref(),
        Some("two@example.com")
    );
}

#[test]
fn an_entity_row_is_written_only_when_something_of_it_changes() {
    let written = |records: Vec<Record>| -> Vec<(Uuid, bool, bool)> {
        run(Some(&HELD), records)
            .0
            .entities
            .iter()
            .map(|entity| (entity.id, entity.created, entity.changed))
            .collect()
    };
    assert_eq!(
        written(vec![record("c1", Some("old@example.com"), Some(40), false)]),
        vec![],
        "a record read again unchanged writes no entity row"
    );
    let mut moved = record("c1", Some("old@example.com"), Some(40), false);
    moved.source_url = Some("https://provider.example/c1".to_owned());
    assert_eq!(
        written(vec![moved]),
        vec![(ENTITY, false, false)],
        "a new link is written without a version step"
    );
    assert_eq!(
        written(vec![record("c1", Some("new@example.com"), Some(40), false)]),
        vec![(ENTITY, false, true)],
        "a changed value writes the entity with a version step"
    );
}
