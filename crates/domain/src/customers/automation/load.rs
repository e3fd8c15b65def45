//! Reading one customer as the rules see it: its fields, custom field values and the facts of
//! the kinds the tenant's rules measure.

use super::*;
use crate::kernel::values::{FollowUpKind, OrderStatus};
use crate::rules::condition::FactKind;

/// What the rules read of an order: customer, time, amount, currency, category, status.
type OrderRow = (
    CustomerId,
    DateTime<Utc>,
    i64,
    String,
    Option<String>,
    OrderStatus,
);

/// Customers whose facts one query reads.
const IDS_PER_QUERY: usize = 1_000;

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
    Ok(
        load_facts_many(conn, std::slice::from_ref(row), defs, measured, fresh)
            .await?
            .pop()
            .unwrap_or_default(),
    )
}

/// [`load_facts`] for several customers, in one query per kind of fact (per thousand
/// customers) however many there are; the facts come in the order of `rows`.
pub(crate) async fn load_facts_many<C: ConnectionTrait>(
    conn: &C,
    rows: &[customer::Model],
    defs: &[CustomFieldDef],
    measured: &[(FactKind, Option<Vec<String>>)],
    fresh: bool,
) -> DomainResult<Vec<CustomerFacts>> {
    let mut all: Vec<CustomerFacts> = rows.iter().map(standard_facts).collect();
    let slot: HashMap<i64, usize> = rows.iter().enumerate().map(|(i, r)| (r.id.0, i)).collect();
    let wants = |kind: FactKind| !fresh && measured.iter().any(|(k, _)| *k == kind);
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
    for chunk in rows.chunks(IDS_PER_QUERY) {
        let ids: Vec<i64> = chunk.iter().map(|r| r.id.0).collect();
        if !defs.is_empty() {
            for (customer, values) in load_field_values(conn, defs, &ids).await? {
                let Some(&i) = slot.get(&customer) else {
                    continue;
                };
                custom_facts(&mut all[i], defs, values);
            }
        }
        if wants(FactKind::Orders) {
            // Only the columns the rules read (a follow-up's text and an order's digest
            // would be read and decoded for nothing).
            let rows: Vec<OrderRow> = order::Entity::find()
                .select_only()
                .column(order::Column::CustomerId)
                .column(order::Column::OccurredAt)
                .column(order::Column::AmountFen)
                .column(order::Column::Currency)
                .column(order::Column::ProductCategory)
                .column(order::Column::Status)
                .filter(order::Column::CustomerId.is_in(ids.clone()))
                .into_tuple()
                .all(conn)
                .await
                .step("reading the customers' orders")?;
            for (customer, occurred_at, amount_fen, currency, product_category, status) in rows {
                if let Some(&i) = slot.get(&customer.0) {
                    all[i].orders.push(OrderFact {
                        occurred_at,
                        amount_fen,
                        currency,
                        product_category,
                        status,
                    });
                }
            }
        }
        if wants(FactKind::FollowUps) {
            let rows: Vec<(CustomerId, DateTime<Utc>, FollowUpKind, Option<String>)> =
                follow_up::Entity::find()
                    .select_only()
                    .column(follow_up::Column::CustomerId)
                    .column(follow_up::Column::OccurredAt)
                    .column(follow_up::Column::Kind)
                    .column(follow_up::Column::Stage)
                    .filter(follow_up::Column::CustomerId.is_in(ids.clone()))
                    .into_tuple()
                    .all(conn)
                    .await
                    .step("reading the customers' follow-ups")?;
            for (customer, occurred_at, kind, stage) in rows {
                if let Some(&i) = slot.get(&customer.0) {
                    all[i].follow_ups.push(FollowUpFact {
                        occurred_at,
                        kind,
                        stage,
                    });
                }
            }
        }
        if wants(FactKind::Events) {
            let mut query = activity_event::Entity::find()
                .select_only()
                .column(activity_event::Column::CustomerId)
                .column(activity_event::Column::OccurredAt)
                .column(activity_event::Column::Kind)
                .column(activity_event::Column::Properties)
                .filter(activity_event::Column::CustomerId.is_in(ids.clone()));
            if let Some(kinds) = &kinds {
                query = query.filter(activity_event::Column::Kind.is_in(kinds.clone()));
            }
            let rows: Vec<(CustomerId, DateTime<Utc>, String, Option<String>)> = query
                .into_tuple()
                .all(conn)
                .await
                .step("reading the customers' events")?;
            for (customer, occurred_at, kind, properties) in rows {
                if let Some(&i) = slot.get(&customer.0) {
                    all[i].events.push(EventFact {
                        occurred_at,
                        kind,
                        properties: properties
                            .and_then(|p| serde_json::from_str(&p).ok())
                            .unwrap_or_default(),
                    });
                }
            }
        }
    }
    Ok(all)
}

/// The customer's own fields as the rules see them.
fn standard_facts(row: &customer::Model) -> CustomerFacts {
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
    facts
}

/// The customer's custom field values as the rules see them.
fn custom_facts(facts: &mut CustomerFacts, defs: &[CustomFieldDef], values: Map<String, Value>) {
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
