//! Reading one customer as the rules see it: its fields, custom field values and the facts of
//! the kinds the tenant's rules measure.

use super::*;
use crate::rules::condition::FactKind;

/// Loads what the rules measure of one customer: its fields and custom fields always, and
/// the facts of the kinds the rules measure.
///
/// `fresh`: the customer was created in this transaction and has no fact yet.
pub(crate) async fn load_facts<C: ConnectionTrait>(
    conn: &C,
    row: &customer::Model,
    defs: &[CustomFieldDef],
    measured: &[(FactKind, Option<Vec<String>>)],
    fresh: bool,
) -> DomainResult<CustomerFacts> {
    let mut facts = CustomerFacts::default();
    let f = &mut facts.fields;
    for (name, value) in [
        ("name", Some(row.name.clone())),
        ("company", row.company.clone()),
        ("industry", row.industry.clone()),
        ("region", row.region.clone()),
        ("project_stage", row.project_stage.clone()),
        ("phone", row.phone.clone()),
    ] {
        if let Some(value) = value {
            f.insert(name, Datum::Text(value));
        }
    }
    if let Some(owner) = row.owner_id {
        f.insert("owner_id", Datum::Number(owner.0 as f64));
    }
    if let Some(channel) = row.source_channel_id {
        f.insert("source_channel_id", Datum::Number(channel.0 as f64));
    }
    for (name, value) in [
        ("created_at", Some(row.created_at)),
        ("updated_at", Some(row.updated_at)),
        ("last_order_at", row.last_order_at),
        ("last_follow_up_at", row.last_follow_up_at),
        ("last_active_at", row.last_active_at),
    ] {
        if let Some(value) = value {
            f.insert(name, Datum::Time(value));
        }
    }
    if !defs.is_empty() {
        let values = load_field_values(conn, defs, &[row.id.0])
            .await?
            .remove(&row.id.0)
            .unwrap_or_default();
        for (key, value) in values {
            let Some(def) = defs.iter().find(|d| d.key == key) else {
                continue;
            };
            let datum = match (def.field_type, &value) {
                (FieldType::Number, v) => v.as_f64().map(Datum::Number),
                (FieldType::Date, Value::String(s)) => s.parse().ok().map(Datum::Date),
                (FieldType::MultiSelect, Value::Array(items)) => Some(Datum::List(
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect(),
                )),
                (_, Value::String(s)) => Some(Datum::Text(s.clone())),
                _ => None,
            };
            if let Some(datum) = datum {
                facts.custom.insert(key, datum);
            }
        }
    }
    let wants = |kind: FactKind| !fresh && measured.iter().any(|(k, _)| *k == kind);
    if wants(FactKind::Orders) {
        facts.orders = order::Entity::find()
            .filter(order::Column::CustomerId.eq(row.id.0))
            .all(conn)
            .await
            .step("reading the customer's orders")?
            .into_iter()
            .map(|o| OrderFact {
                occurred_at: o.occurred_at,
                amount_fen: o.amount_fen,
                currency: o.currency,
                product_category: o.product_category,
                status: o.status,
            })
            .collect();
    }
    if wants(FactKind::FollowUps) {
        facts.follow_ups = follow_up::Entity::find()
            .filter(follow_up::Column::CustomerId.eq(row.id.0))
            .all(conn)
            .await
            .step("reading the customer's follow-ups")?
            .into_iter()
            .map(|f| FollowUpFact {
                occurred_at: f.occurred_at,
                kind: f.kind,
                stage: f.stage,
            })
            .collect();
    }
    if wants(FactKind::Events) {
        // Only the event kinds some rule measures (all of them if one measures any kind).
        let mut kinds: Option<Vec<String>> = Some(Vec::new());
        for (kind, names) in measured {
            if *kind != FactKind::Events {
                continue;
            }
            match (names, kinds.as_mut()) {
                (Some(names), Some(all)) => all.extend(names.iter().cloned()),
                _ => kinds = None,
            }
        }
        let mut query =
            activity_event::Entity::find().filter(activity_event::Column::CustomerId.eq(row.id.0));
        if let Some(kinds) = kinds {
            query = query.filter(activity_event::Column::Kind.is_in(kinds));
        }
        facts.events = query
            .all(conn)
            .await
            .step("reading the customer's events")?
            .into_iter()
            .map(|e| EventFact {
                occurred_at: e.occurred_at,
                kind: e.kind,
                properties: e
                    .properties
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default(),
            })
            .collect();
    }
    Ok(facts)
}

/// Brings the fields the rules see up to date with an owner a rule just gave or took.
pub(super) fn owner_changed(facts: &mut CustomerFacts, row: &customer::Model) {
    match row.owner_id {
        Some(owner) => {
            facts
                .fields
                .insert("owner_id", Datum::Number(owner.0 as f64));
        }
        None => {
            facts.fields.remove("owner_id");
        }
    }
    facts
        .fields
        .insert("updated_at", Datum::Time(row.updated_at));
}
