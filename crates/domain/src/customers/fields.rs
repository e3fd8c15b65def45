//! Custom field values of customers: checking submitted values against the tenant's
//! definitions, and writing and reading the stored rows.

use super::*;
use crate::kernel::ids::CustomFieldId;

/// Checks every custom field value (unknown keys, types, options, and on `complete` data the
/// required fields) and returns the stored values per field.
pub(super) fn validate_custom_fields(
    defs: &[CustomFieldDef],
    given: &Map<String, Value>,
    complete: bool,
    issues: &mut Vec<FieldIssue>,
) -> Vec<(i64, Vec<String>)> {
    let mut out = Vec::new();
    for (key, value) in given {
        match defs.iter().find(|d| &d.key == key) {
            None => issues.push(FieldIssue::new(
                format!("custom_fields.{key}"),
                "unknown_field",
                "no such custom field",
            )),
            Some(_) if value.is_null() => {}
            Some(def) => match custom_fields::stored_values(def, value, false) {
                Ok(values) => out.push((def.id.0, values)),
                Err(issue) => issues.push(issue),
            },
        }
    }
    if complete {
        for def in defs.iter().filter(|d| d.required) {
            if given.get(&def.key).is_none_or(Value::is_null) {
                issues.push(FieldIssue::new(
                    format!("custom_fields.{}", def.key),
                    "required",
                    "is required",
                ));
            }
        }
    }
    out
}

pub(crate) async fn write_field_values(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: CustomerId,
    values: &[(i64, Vec<String>)],
) -> DomainResult<()> {
    let rows: Vec<customer_field_value::ActiveModel> = values
        .iter()
        .flat_map(|(field, values)| {
            values
                .iter()
                .map(move |value| customer_field_value::ActiveModel {
                    customer_id: Set(id),
                    field_id: Set(CustomFieldId(*field)),
                    value: Set(value.clone()),
                    tenant_id: Set(tenant),
                })
        })
        .collect();
    if !rows.is_empty() {
        customer_field_value::Entity::insert_many(rows)
            .exec(txn)
            .await?;
    }
    Ok(())
}

pub(crate) async fn load_field_values<C: ConnectionTrait>(
    conn: &C,
    defs: &[CustomFieldDef],
    ids: &[i64],
) -> DomainResult<HashMap<i64, Map<String, Value>>> {
    let rows = customer_field_value::Entity::find()
        .filter(customer_field_value::Column::CustomerId.is_in(ids.iter().copied()))
        .all(conn)
        .await?;
    let mut grouped: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    for row in rows {
        grouped
            .entry((row.customer_id.0, row.field_id.0))
            .or_default()
            .push(row.value);
    }
    let mut out: HashMap<i64, Map<String, Value>> = HashMap::new();
    for ((customer, field), values) in grouped {
        if let Some(def) = defs.iter().find(|d| d.id.0 == field) {
            out.entry(customer)
                .or_default()
                .insert(def.key.clone(), custom_fields::json_value(def, values));
        }
    }
    Ok(out)
}
