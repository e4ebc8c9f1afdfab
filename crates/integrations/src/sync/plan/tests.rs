//! The merge rules, case by case, without a database.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, TimeZone as _, Utc};
use providers::Record;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Existing, ExistingEntity, Origin, PagePlan, PageRecords, PlanInput, fingerprint};

/// [`super::plan`] of a page of `records`.
fn plan(
    input: &PlanInput<'_>,
    records: Vec<Record>,
    existing: &Existing,
    new_id: impl FnMut() -> Uuid,
) -> PagePlan {
    super::plan(input, PageRecords::of(input, records), existing, new_id)
}

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
            sync_version: 3,
            fingerprint: None,
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
        vec![(ENTITY, false, false)],
        "a record read again unchanged that its entity has no fingerprint of writes only that"
    );
    let (planned, _) = run(
        Some(&HELD),
        vec![record("c1", Some("old@example.com"), Some(40), false)],
    );
    assert!(
        planned
            .entities
            .iter()
            .all(|entity| !entity.synced && entity.fingerprint.is_some()),
        "{planned:?}"
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

fn input_with<'a>(
    fields: &'a BTreeMap<String, String>,
    attribute_ids: &'a HashMap<String, Uuid>,
) -> PlanInput<'a> {
    PlanInput {
        integration_id: INTEGRATION,
        fields,
        attribute_ids,
        now: at(59),
    }
}

/// `existing` after `planned` is written, as the set-based write and the archive do it.
fn apply(existing: &mut Existing, planned: &PagePlan) {
    for write in &planned.entities {
        let entity = existing
            .entities
            .entry(write.external_id.clone())
            .or_insert_with(|| ExistingEntity {
                id: write.id,
                archived: false,
                display_name: None,
                source_url: None,
                sync_version: 0,
                fingerprint: None,
            });
        if write.synced {
            entity.archived = false;
            entity.display_name.clone_from(&write.display_name);
            entity.source_url.clone_from(&write.source_url);
            entity.sync_version += i64::from(write.changed);
        }
        entity.fingerprint.clone_from(&write.fingerprint);
    }
    for write in &planned.values {
        let slot = (write.entity_id, write.attribute_id);
        existing.values.insert(slot, write.value.clone());
        existing.origins.insert(
            slot,
            Origin {
                source_integration_id: Some(INTEGRATION),
                source_external_field: Some(write.external_field.clone()),
                last_updated_at: write.observed_at,
                override_by_user: false,
                observed_value: Some(write.value.clone()),
                observed_external_field: Some(write.external_field.clone()),
                observed_updated_at: Some(write.observed_at),
            },
        );
    }
    for write in &planned.pinned {
        if let Some(origin) = existing
            .origins
            .get_mut(&(write.entity_id, write.attribute_id))
        {
            origin.observed_value = Some(write.value.clone());
            origin.observed_external_field = Some(write.external_field.clone());
            origin.observed_updated_at = Some(write.observed_at);
        }
    }
    for id in &planned.archive {
        for entity in existing.entities.values_mut() {
            if entity.id == *id {
                entity.archived = true;
                entity.sync_version += 1;
            }
        }
    }
}

/// What the lookup returns: a sealed entity comes without its values and provenance.
fn looked_up(existing: &Existing, input: &PlanInput<'_>, records: &[Record]) -> Existing {
    let mut out = existing.clone();
    for record in records {
        if let (Some(entity), Some(print)) = (
            existing.entities.get(&record.external_id),
            fingerprint(input, record),
        ) && entity.seals(&print)
        {
            out.values
                .retain(|(entity_id, _), _| *entity_id != entity.id);
            out.origins
                .retain(|(entity_id, _), _| *entity_id != entity.id);
        }
    }
    out
}

#[test]
fn a_record_its_entity_carries_the_fingerprint_of_is_unchanged_without_its_values() {
    let fields = BTreeMap::from([("email".to_owned(), "email".to_owned())]);
    let attribute_ids = HashMap::from([("email".to_owned(), EMAIL)]);
    let input = input_with(&fields, &attribute_ids);
    let mut existing = Existing::default();
    let first = plan(
        &input,
        vec![record("c1", Some("a@example.com"), Some(40), false)],
        &existing,
        || NEW_ENTITY,
    );
    apply(&mut existing, &first);
    let sealed = existing.entities["c1"].clone();
    assert_eq!(sealed.sync_version, 1);
    assert!(sealed.fingerprint.is_some(), "{first:?}");
    let again = vec![record("c1", Some("a@example.com"), Some(40), false)];
    let second = plan(
        &input,
        again.clone(),
        &looked_up(&existing, &input, &again),
        || NEW_ENTITY,
    );
    assert!(
        second.entities.is_empty() && second.values.is_empty() && second.pinned.is_empty(),
        "{second:?}"
    );
    assert_eq!(second.counts.unchanged, 1);
    assert_eq!(second.newest, Some(at(40)));
    // An edit raises the version: the fingerprint no longer seals, and the record is planned.
    let mut edited = existing.clone();
    if let Some(entity) = edited.entities.get_mut("c1") {
        entity.sync_version += 1;
    }
    edited
        .values
        .insert((NEW_ENTITY, EMAIL), json!("mine@example.com"));
    if let Some(origin) = edited.origins.get_mut(&(NEW_ENTITY, EMAIL)) {
        origin.override_by_user = true;
        origin.source_integration_id = None;
    }
    let third = plan(&input, again, &edited, || NEW_ENTITY);
    assert_eq!(third.counts.conflicts, 1, "{third:?}");
    assert_eq!(
        third
            .entities
            .iter()
            .map(|entity| (entity.synced, entity.fingerprint.clone()))
            .collect::<Vec<_>>(),
        vec![(false, None)],
        "a record that counts a conflict leaves no fingerprint"
    );
}

/// A page's lookup keys are its records once each, sorted, with the fingerprint of the version
/// the plan applies (the last); a deleted last version has none.
#[test]
fn a_pages_keys_carry_the_fingerprint_of_each_records_last_version() {
    let fields = BTreeMap::from([("email".to_owned(), "email".to_owned())]);
    let attribute_ids = HashMap::from([("email".to_owned(), EMAIL)]);
    let input = input_with(&fields, &attribute_ids);
    let last_b = record("b", Some("b2@example.com"), Some(3), false);
    let last_a = record("a", Some("a2@example.com"), Some(4), false);
    let page = vec![
        record("b", Some("b1@example.com"), Some(1), false),
        record("a", Some("a1@example.com"), Some(2), false),
        last_b.clone(),
        record("c", Some("c@example.com"), Some(2), false),
        last_a.clone(),
        record("c", None, Some(5), true),
    ];
    let records = PageRecords::of(&input, page);
    assert_eq!(
        records.keys(),
        vec![
            ("a", fingerprint(&input, &last_a)),
            ("b", fingerprint(&input, &last_b)),
            ("c", None),
        ]
    );
    assert!(fingerprint(&input, &last_a).is_some());
}

#[test]
fn the_fingerprint_covers_what_the_plan_reads_of_a_record_and_its_mapping() {
    let fields = BTreeMap::from([("email".to_owned(), "email".to_owned())]);
    let attribute_ids = HashMap::from([("email".to_owned(), EMAIL)]);
    let input = input_with(&fields, &attribute_ids);
    let base = record("c1", Some("a@example.com"), Some(40), false);
    let print = fingerprint(&input, &base);
    assert!(print.is_some());
    assert_eq!(print, fingerprint(&input, &base.clone()), "deterministic");
    let mut other_field = base.clone();
    other_field.fields.insert("phone".to_owned(), json!("1"));
    assert_eq!(
        print,
        fingerprint(&input, &other_field),
        "an unmapped field is not read"
    );
    let mut linked = base.clone();
    linked.source_url = Some("https://provider.example/c1".to_owned());
    let variants = [
        record("c2", Some("a@example.com"), Some(40), false),
        record("c1", Some("b@example.com"), Some(40), false),
        record("c1", None, Some(40), false),
        record("c1", Some("a@example.com"), Some(41), false),
        record("c1", Some("a@example.com"), None, false),
        linked,
    ];
    for variant in &variants {
        assert_ne!(print, fingerprint(&input, variant), "{variant:?}");
    }
    assert_eq!(fingerprint(&input, &record("c1", None, None, true)), None);
    let renamed = BTreeMap::from([("mail".to_owned(), "email".to_owned())]);
    let moved = HashMap::from([("email".to_owned(), NEW_ENTITY)]);
    let other = PlanInput {
        integration_id: OTHER_INTEGRATION,
        ..input
    };
    for input in [
        input_with(&renamed, &attribute_ids),
        input_with(&fields, &moved),
        other,
    ] {
        assert_ne!(print, fingerprint(&input, &base));
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const NAME: Uuid = Uuid::from_u128(21);

    fn text() -> impl Strategy<Value = Option<&'static str>> {
        prop::option::of(prop::sample::select(vec!["a", "b", "c"]))
    }

    prop_compose! {
        fn origin()(
            from in prop::sample::select(vec![Some(INTEGRATION), Some(INTEGRATION), Some(OTHER_INTEGRATION), None]),
            field in prop::sample::select(vec!["email", "mail"]),
            minute in 0u32..4,
            overridden in any::<bool>(),
            observed in text(),
            observed_minute in 0u32..4,
        ) -> Origin {
            Origin {
                source_integration_id: from,
                source_external_field: Some(field.to_owned()),
                last_updated_at: at(minute),
                override_by_user: overridden,
                observed_value: observed.map(|value| json!(value)),
                observed_external_field: observed.map(|_| "email".to_owned()),
                observed_updated_at: observed.map(|_| at(observed_minute)),
            }
        }
    }

    prop_compose! {
        fn held()(
            present in prop::bool::weighted(0.9),
            archived in prop::bool::weighted(0.2),
            version in 0i64..4,
            email in text(),
            email_origin in prop::option::weighted(0.8, origin()),
            name in text(),
            name_origin in prop::option::weighted(0.8, origin()),
        ) -> Existing {
            let mut out = Existing::default();
            if !present {
                return out;
            }
            out.entities.insert("c1".to_owned(), ExistingEntity {
                id: ENTITY,
                archived,
                display_name: None,
                source_url: None,
                sync_version: version,
                fingerprint: None,
            });
            for (attribute, value, origin) in [(EMAIL, email, email_origin), (NAME, name, name_origin)] {
                if let Some(value) = value {
                    out.values.insert((ENTITY, attribute), json!(value));
                }
                if let Some(origin) = origin {
                    out.origins.insert((ENTITY, attribute), origin);
                }
            }
            out
        }
    }

    prop_compose! {
        fn incoming()(
            email in text(),
            name in text(),
            minute in prop::option::of(0u32..4),
            deleted in prop::bool::weighted(0.15),
            linked in any::<bool>(),
        ) -> Record {
            let mut record = record("c1", email, minute, deleted);
            if let Some(name) = name {
                record.fields.insert("full_name".to_owned(), json!(name));
            }
            if linked {
                record.source_url = Some("https://provider.example/c1".to_owned());
            }
            record
        }
    }

    /// What a plan writes, leaving out the entity rows that carry only a fingerprint.
    fn writes(planned: &PagePlan) -> (Vec<String>, usize, usize, usize, [u32; 5]) {
        let counts = &planned.counts;
        (
            planned
                .entities
                .iter()
                .filter(|entity| entity.synced)
                .map(|entity| format!("{entity:?}"))
                .collect(),
            planned.values.len(),
            planned.pinned.len(),
            planned.archive.len(),
            [
                counts.created,
                counts.updated,
                counts.deleted,
                counts.unchanged,
                counts.conflicts,
            ],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// Whatever the entity held, once a record is written, the record read again plans the
        /// same whether its fingerprint lets it skip its values or not; and a fingerprint is only
        /// left where planning the record again writes nothing and counts no conflict.
        #[test]
        fn a_sealed_record_plans_as_it_would_unsealed(
            held in held(),
            first in incoming(),
            other in incoming(),
            change in 0u8..5,
        ) {
            let fields = BTreeMap::from([
                ("email".to_owned(), "email".to_owned()),
                ("full_name".to_owned(), "name".to_owned()),
            ]);
            let attribute_ids = HashMap::from([("email".to_owned(), EMAIL), ("name".to_owned(), NAME)]);
            let input = input_with(&fields, &attribute_ids);
            let mut existing = held;
            let written = plan(&input, vec![first.clone()], &existing, || ENTITY);
            apply(&mut existing, &written);
            // Read again: the same record, or one that differs in its time, one value, its
            // link, or anything.
            let again = change == 0;
            let mut next = first.clone();
            match change {
                1 => next.updated_at = other.updated_at,
                2 => next.fields = other.fields.clone(),
                3 => next.source_url.clone_from(&other.source_url),
                4 => next = other,
                _ => {}
            }
            let sealed = plan(&input, vec![next.clone()], &looked_up(&existing, &input, std::slice::from_ref(&next)), || ENTITY);
            let mut unsealed = existing.clone();
            for entity in unsealed.entities.values_mut() {
                entity.fingerprint = None;
            }
            let full = plan(&input, vec![next], &unsealed, || ENTITY);
            prop_assert_eq!(writes(&sealed), writes(&full));
            prop_assert_eq!(sealed.newest, full.newest);
            if again && existing.entities.get("c1").is_some_and(|entity| entity.fingerprint.is_some()) {
                prop_assert_eq!(writes(&full), (vec![], 0, 0, 0, [0, 0, 0, 1, 0]));
            }
        }
    }
}
