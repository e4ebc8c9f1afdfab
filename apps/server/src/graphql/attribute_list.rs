//! An entity's attribute list, resolved without async-graphql's per-field machinery when the
//! query allows it.
//!
//! A page of 50 entities holds 500 attributes and 500 provenance objects; resolved generically,
//! each of their ~4,000 fields is a boxed future polled through a `FuturesUnordered`, and `perf`
//! put that machinery and its allocations at about half of the server's CPU per page. Their
//! fields are plain data (but `history` and `syncRun`, which read the database), so when a
//! selection names only plain fields, [`AttributeList`] builds the response values directly, with
//! the same conversions the derived resolvers use (`ScalarType::to_value`, `enum_value`,
//! `to_value` for JSON). Anything else in the selection (fragments, directives, a field named
//! twice, `history`, `syncRun`) and the whole list is resolved generically, as is each
//! provenance's `integration` object (once per integration and list, then reused). The schema is
//! the generic list's: the type registers as `[Attribute!]!`. A test compares both paths on the
//! same data (`tests/tests/graphql.rs`).

use std::borrow::Cow;
use std::collections::HashMap;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::enum_value;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ScalarType as _, ServerResult, Value,
};
use uuid::Uuid;

use super::entities::{Attribute, Provenance, load_integration};

/// The attributes of an entity, as its `attributes` field returns them.
#[derive(Debug, Clone, Default)]
pub struct AttributeList(pub Vec<Attribute>);

impl OutputType for AttributeList {
    fn type_name() -> Cow<'static, str> {
        <Vec<Attribute> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<Attribute> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<Attribute> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match Plan::of(&ctx.item.node) {
            Some(plan) => resolve_plain(&self.0, &plan, ctx).await,
            None => OutputType::resolve(&self.0, ctx, field).await,
        }
    }
}

/// A selected field: its response key, and for `provenance` or `integration` its selection.
struct Selected<'a, K> {
    key: &'a Name,
    kind: K,
}

#[derive(Clone, Copy)]
enum AttributeField {
    Typename,
    Key,
    Value,
}

#[derive(Clone, Copy)]
enum ProvenanceField {
    Typename,
    SourceType,
    ExternalField,
    LastUpdatedAt,
    OverriddenByUser,
    OverrideAt,
}

/// What a plain selection of the list's items asks for.
struct Plan<'a> {
    attribute: Vec<Selected<'a, Option<AttributeField>>>,
    /// The `provenance` field's selection (`None` in `attribute` stands for it).
    provenance: Option<ProvenancePlan<'a>>,
}

struct ProvenancePlan<'a> {
    field: &'a Positioned<Field>,
    /// `None` stands for `integration`.
    fields: Vec<Selected<'a, Option<ProvenanceField>>>,
    integration: Option<&'a Positioned<Field>>,
}

/// The plain fields of `selection`, each once and without directives, or `None`.
fn plain_fields(selection: &SelectionSet) -> Option<Vec<&Positioned<Field>>> {
    let mut fields = Vec::with_capacity(selection.items.len());
    let mut keys: Vec<&Name> = Vec::with_capacity(selection.items.len());
    for item in &selection.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let key = &field.node.response_key().node;
        if !field.node.directives.is_empty() || keys.contains(&key) {
            return None;
        }
        keys.push(key);
        fields.push(field);
    }
    Some(fields)
}

impl<'a> Plan<'a> {
    fn of(selection: &'a SelectionSet) -> Option<Self> {
        let mut plan = Plan {
            attribute: Vec::new(),
            provenance: None,
        };
        for field in plain_fields(selection)? {
            let key = &field.node.response_key().node;
            let kind = match field.node.name.node.as_str() {
                "__typename" => Some(AttributeField::Typename),
                "key" => Some(AttributeField::Key),
                "value" => Some(AttributeField::Value),
                // Twice (under two aliases) would need two selections: left to the generic path.
                "provenance" if plan.provenance.is_none() => {
                    plan.provenance = Some(ProvenancePlan::of(field)?);
                    None
                }
                _ => return None,
            };
            plan.attribute.push(Selected { key, kind });
        }
        Some(plan)
    }
}

impl<'a> ProvenancePlan<'a> {
    fn of(field: &'a Positioned<Field>) -> Option<Self> {
        let mut plan = ProvenancePlan {
            field,
            fields: Vec::new(),
            integration: None,
        };
        for field in plain_fields(&field.node.selection_set.node)? {
            let key = &field.node.response_key().node;
            let kind = match field.node.name.node.as_str() {
                "__typename" => Some(ProvenanceField::Typename),
                "sourceType" => Some(ProvenanceField::SourceType),
                "externalField" => Some(ProvenanceField::ExternalField),
                "lastUpdatedAt" => Some(ProvenanceField::LastUpdatedAt),
                "overriddenByUser" => Some(ProvenanceField::OverriddenByUser),
                "overrideAt" => Some(ProvenanceField::OverrideAt),
                "integration" if plan.integration.is_none() => {
                    plan.integration = Some(field);
                    None
                }
                _ => return None,
            };
            plan.fields.push(Selected { key, kind });
        }
        Some(plan)
    }
}

fn optional_string(value: Option<&String>) -> Value {
    value.map_or(Value::Null, |text| Value::String(text.clone()))
}

async fn resolve_plain(
    attributes: &[Attribute],
    plan: &Plan<'_>,
    ctx: &ContextSelectionSet<'_>,
) -> ServerResult<Value> {
    // Each integration's object, resolved generically the first time this list names it.
    let mut integrations: HashMap<Uuid, Value> = HashMap::new();
    let mut items = Vec::with_capacity(attributes.len());
    for (index, attribute) in attributes.iter().enumerate() {
        let mut object = IndexMap::with_capacity(plan.attribute.len());
        for selected in &plan.attribute {
            let value = match selected.kind {
                Some(AttributeField::Typename) => Value::String("Attribute".to_owned()),
                Some(AttributeField::Key) => Value::String(attribute.key.clone()),
                Some(AttributeField::Value) => async_graphql::to_value(&attribute.value.0)
                    .ok()
                    .unwrap_or_default(),
                None => match (&plan.provenance, &attribute.provenance) {
                    (Some(provenance_plan), Some(provenance)) => {
                        resolve_provenance(
                            provenance,
                            provenance_plan,
                            &mut integrations,
                            ctx,
                            index,
                        )
                        .await?
                    }
                    _ => Value::Null,
                },
            };
            object.insert(selected.key.clone(), value);
        }
        items.push(Value::Object(object));
    }
    Ok(Value::List(items))
}

async fn resolve_provenance(
    provenance: &Provenance,
    plan: &ProvenancePlan<'_>,
    integrations: &mut HashMap<Uuid, Value>,
    ctx: &ContextSelectionSet<'_>,
    index: usize,
) -> ServerResult<Value> {
    let mut object = IndexMap::with_capacity(plan.fields.len());
    for selected in &plan.fields {
        let value = match selected.kind {
            Some(ProvenanceField::Typename) => Value::String("Provenance".to_owned()),
            Some(ProvenanceField::SourceType) => enum_value(provenance.source_type),
            Some(ProvenanceField::ExternalField) => {
                optional_string(provenance.external_field.as_ref())
            }
            Some(ProvenanceField::LastUpdatedAt) => provenance.last_updated_at.to_value(),
            Some(ProvenanceField::OverriddenByUser) => {
                Value::Boolean(provenance.overridden_by_user)
            }
            Some(ProvenanceField::OverrideAt) => provenance
                .override_at
                .as_ref()
                .map_or(Value::Null, |time| time.to_value()),
            None => {
                let Some(integration_field) = plan.integration else {
                    continue;
                };
                resolve_integration(
                    provenance,
                    integration_field,
                    plan,
                    integrations,
                    ctx,
                    index,
                )
                .await?
            }
        };
        object.insert(selected.key.clone(), value);
    }
    Ok(Value::Object(object))
}

/// A provenance's `integration`, through the generic resolvers (with the error path they would
/// have), once per integration and list.
async fn resolve_integration(
    provenance: &Provenance,
    integration_field: &Positioned<Field>,
    plan: &ProvenancePlan<'_>,
    integrations: &mut HashMap<Uuid, Value>,
    ctx: &ContextSelectionSet<'_>,
    index: usize,
) -> ServerResult<Value> {
    let Some(id) = provenance.integration_id else {
        return Ok(Value::Null);
    };
    if let Some(known) = integrations.get(&id) {
        return Ok(known.clone());
    }
    let item = ctx.with_index(index);
    let provenance_field = item.with_field(plan.field);
    let provenance_object = provenance_field.with_selection_set(&plan.field.node.selection_set);
    let field_ctx = provenance_object.with_field(integration_field);
    let integration = load_integration(&field_ctx, Some(id))
        .await
        .map_err(|error| {
            field_ctx.set_error_path(error.into_server_error(integration_field.pos))
        })?;
    let value = match integration {
        None => Value::Null,
        Some(integration) => {
            let object = field_ctx.with_selection_set(&integration_field.node.selection_set);
            OutputType::resolve(&*integration, &object, integration_field).await?
        }
    };
    integrations.insert(id, value.clone());
    Ok(value)
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::{DocumentOperations, Selection};

    use super::Plan;

    /// Whether the attribute list would answer `attributes { … }` itself.
    fn plain(selection: &str) -> bool {
        let document = parse_query(format!("{{ attributes {selection} }}")).expect("a query");
        let DocumentOperations::Single(operation) = &document.operations else {
            panic!("one operation");
        };
        let Selection::Field(field) = &operation.node.selection_set.node.items[0].node else {
            panic!("a field");
        };
        Plan::of(&field.node.selection_set.node).is_some()
    }

    #[test]
    fn plain_selections_are_answered_directly_and_anything_else_generically() {
        assert!(plain(
            "{ key value provenance { sourceType externalField lastUpdatedAt overriddenByUser overrideAt integration { slug name } } }"
        ));
        assert!(plain("{ __typename k: key provenance { __typename } }"));
        assert!(plain("{ key }"));
        // Fragments, directives, a key named twice, fields that read the database, unknown fields.
        assert!(!plain("{ ... on Attribute { key } }"));
        assert!(!plain("{ ...Parts }"));
        assert!(!plain("{ key @include(if: true) }"));
        assert!(!plain("{ key key }"));
        assert!(!plain("{ a: key a: value }"));
        assert!(!plain("{ key history { edges { cursor } } }"));
        assert!(!plain("{ provenance { syncRun { id } } }"));
        assert!(!plain(
            "{ provenance { ... on Provenance { sourceType } } }"
        ));
        assert!(!plain("{ provenance { sourceType @skip(if: false) } }"));
        assert!(!plain("{ nope }"));
        assert!(!plain(
            "{ a: provenance { sourceType } b: provenance { externalField } }"
        ));
        assert!(!plain(
            "{ provenance { a: integration { slug } b: integration { name } } }"
        ));
    }
}
