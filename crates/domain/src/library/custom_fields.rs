//! Tenant-defined custom fields on customers, and the validation of their values.
//!
//! Values are stored one row per value in `customer_field_values` in a canonical text form
//! (numbers without trailing zeros, dates as `YYYY-MM-DD`), so that equality filters are
//! indexed lookups and compare the same on every backend.

use crate::kernel::clock;
use chrono::{NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde::Serialize;
use serde_json::Value;

use crate::access::StaffActor;
use crate::access::policy::{self, Action};
use crate::kernel::error::{DomainError, DomainResult, ErrorCode, FieldIssue};
use crate::kernel::ids::{CustomFieldId, TenantId};
use crate::kernel::values::FieldOptions;
pub use crate::kernel::values::FieldType;
use crate::store::entities::custom_field_def;
use crate::support::audit::{self, Actor, AuditEntry};
use crate::support::{config_version, data_version};

/// Longest text value, in characters.
pub const TEXT_VALUE_MAX: usize = 200;
/// Largest magnitude a number field holds: integers up to it are exact in an `f64`.
pub const NUMBER_MAX: f64 = 1e15;
/// Most decimal places a number field holds. With [`NUMBER_MAX`] this bounds the stored
/// text to 23 characters on every backend.
pub const NUMBER_DECIMALS: usize = 6;
/// Most options a select field may have.
pub const OPTIONS_MAX: usize = 100;

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Date => "date",
            FieldType::SingleSelect => "single_select",
            FieldType::MultiSelect => "multi_select",
        }
    }

    fn is_select(self) -> bool {
        matches!(self, FieldType::SingleSelect | FieldType::MultiSelect)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomFieldDef {
    pub id: CustomFieldId,
    pub key: String,
    pub label: String,
    pub field_type: FieldType,
    pub options: Vec<String>,
    pub required: bool,
    pub created_at: chrono::DateTime<Utc>,
}

impl TryFrom<custom_field_def::Model> for CustomFieldDef {
    type Error = DomainError;

    fn try_from(m: custom_field_def::Model) -> Result<Self, Self::Error> {
        Ok(CustomFieldDef {
            id: m.id,
            key: m.field_key,
            label: m.label,
            field_type: m.field_type,
            options: m.options.0,
            required: m.required,
            created_at: m.created_at,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewCustomField {
    pub key: String,
    pub label: String,
    pub field_type: FieldType,
    pub options: Vec<String>,
    pub required: bool,
}

/// Whether `key` is a usable field key: a lowercase letter, then up to 31 of `[a-z0-9_]`.
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('a'..='z'))
        && key.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Defines a custom field for the staff member's tenant ([`Action::DefineCustomFields`]).
///
/// Long because it checks every field of the definition in the order a client sees the errors.
#[tracing::instrument(skip_all, fields(tenant = %staff.tenant, staff = %staff.id))]
pub async fn create(
    db: &DatabaseConnection,
    staff: &StaffActor,
    new: NewCustomField,
) -> DomainResult<CustomFieldDef> {
    policy::permit(staff, Action::DefineCustomFields)?;
    let (tenant, actor) = (staff.tenant, staff.id);
    if !valid_key(&new.key) {
        return Err(DomainError::field(
            "key",
            "pattern",
            "must start with a-z and contain only a-z, 0-9 and _ (at most 32)",
        ));
    }
    let label = new.label.trim().to_owned();
    if label.is_empty() || label.chars().count() > 32 {
        return Err(DomainError::field(
            "label",
            "length",
            "must be 1 to 32 characters",
        ));
    }
    let options: Vec<String> = new.options.iter().map(|o| o.trim().to_owned()).collect();
    if new.field_type.is_select() {
        if options.is_empty() || options.len() > OPTIONS_MAX {
            return Err(DomainError::field(
                "options",
                "length",
                format!("a select field needs 1 to {OPTIONS_MAX} options"),
            ));
        }
        for (i, option) in options.iter().enumerate() {
            if option.is_empty() || option.chars().count() > 64 {
                return Err(DomainError::field(
                    format!("options[{i}]"),
                    "length",
                    "must be 1 to 64 characters",
                ));
            }
            if options[..i].contains(option) {
                return Err(DomainError::field(
                    format!("options[{i}]"),
                    "duplicate",
                    "options must be unique",
                ));
            }
        }
    } else if !options.is_empty() {
        return Err(DomainError::field(
            "options",
            "not_allowed",
            "only select fields have options",
        ));
    }
    let txn = db.begin().await?;
    let existing = custom_field_def::Entity::find()
        .filter(custom_field_def::Column::TenantId.eq(tenant.0))
        .filter(custom_field_def::Column::FieldKey.eq(new.key.as_str()))
        .one(&txn)
        .await?;
    if let Some(existing) = existing {
        return Err(DomainError::Taken {
            code: ErrorCode::CustomFieldKeyTaken,
            detail: format!(
                "the custom field \"{}\" (id {}) already uses this key",
                existing.label, existing.id
            ),
            existing_id: Some(existing.id.0),
        });
    }
    let model = custom_field_def::ActiveModel {
        tenant_id: Set(tenant),
        field_key: Set(new.key.clone()),
        label: Set(label),
        field_type: Set(new.field_type),
        options: Set(FieldOptions(options)),
        required: Set(new.required),
        created_at: Set(clock::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor: Actor::Staff(actor),
            action: "custom_field.created",
            target_type: "custom_field",
            target_id: Some(model.id.to_string()),
            details: Some(serde_json::json!({"key": new.key, "type": new.field_type})),
        },
    )
    .await?;
    config_version::bump(&txn, tenant).await?;
    data_version::bump(&txn, tenant).await?;
    txn.commit().await?;
    model.try_into()
}

/// The tenant's custom fields, in creation order.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> DomainResult<Vec<CustomFieldDef>> {
    custom_field_def::Entity::find()
        .filter(custom_field_def::Column::TenantId.eq(tenant.0))
        .order_by_asc(custom_field_def::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(CustomFieldDef::try_from)
        .collect()
}

fn canonical_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Checks `value` against `def` and returns the stored form (one entry per value).
/// `for_filter` accepts a single option for a multi-select ("contains").
///
/// Long because it is one match over the field types, each with its own canonical form.
pub fn stored_values(
    def: &CustomFieldDef,
    value: &Value,
    for_filter: bool,
) -> Result<Vec<String>, FieldIssue> {
    let field = format!("custom_fields.{}", def.key);
    let bad = |code: &'static str, message: &str| FieldIssue::new(field.clone(), code, message);
    match def.field_type {
        FieldType::Text => {
            let text = value
                .as_str()
                .ok_or_else(|| bad("invalid_type", "must be a string"))?
                .trim();
            let count = text.chars().count();
            if count == 0 || count > TEXT_VALUE_MAX {
                return Err(bad("length", "must be 1 to 200 characters"));
            }
            Ok(vec![text.to_owned()])
        }
        FieldType::Number => {
            let n = value
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or_else(|| bad("invalid_type", "must be a number"))?;
            if n.abs() > NUMBER_MAX {
                return Err(bad("range", "must be between -1e15 and 1e15"));
            }
            let text = canonical_number(n);
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
            if decimals > NUMBER_DECIMALS {
                return Err(bad(
                    "precision",
                    "must have at most 6 decimal places (e.g. 0.000001)",
                ));
            }
            Ok(vec![text])
        }
        FieldType::Date => {
            let text = value
                .as_str()
                .ok_or_else(|| bad("invalid_type", "must be a date string YYYY-MM-DD"))?;
            let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| bad("date", "must be a date YYYY-MM-DD"))?;
            Ok(vec![date.format("%Y-%m-%d").to_string()])
        }
        FieldType::SingleSelect => {
            let text = value
                .as_str()
                .ok_or_else(|| bad("invalid_type", "must be one of the options"))?;
            if !def.options.iter().any(|o| o == text) {
                return Err(bad("option", "must be one of the field's options"));
            }
            Ok(vec![text.to_owned()])
        }
        FieldType::MultiSelect => {
            if for_filter && let Some(text) = value.as_str() {
                if !def.options.iter().any(|o| o == text) {
                    return Err(bad("option", "must be one of the field's options"));
                }
                return Ok(vec![text.to_owned()]);
            }
            let items = value
                .as_array()
                .ok_or_else(|| bad("invalid_type", "must be an array of options"))?;
            if items.is_empty() {
                return Err(bad("length", "give at least one option, or null to clear"));
            }
            let mut out: Vec<String> = Vec::new();
            for item in items {
                let text = item.as_str().filter(|t| def.options.iter().any(|o| o == t));
                let text = text.ok_or_else(|| {
                    bad("option", "every item must be one of the field's options")
                })?;
                if !out.iter().any(|o| o == text) {
                    out.push(text.to_owned());
                }
            }
            Ok(out)
        }
    }
}

/// The JSON form of stored values.
pub fn json_value(def: &CustomFieldDef, mut values: Vec<String>) -> Value {
    match def.field_type {
        FieldType::MultiSelect => {
            values.sort_by_key(|v| def.options.iter().position(|o| o == v));
            Value::from(values)
        }
        FieldType::Number => values
            .pop()
            .and_then(|v| v.parse::<f64>().ok())
            .and_then(|n| {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    Some(Value::from(n as i64))
                } else {
                    serde_json::Number::from_f64(n).map(Value::Number)
                }
            })
            .unwrap_or(Value::Null),
        _ => values.pop().map(Value::from).unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(field_type: FieldType, options: &[&str]) -> CustomFieldDef {
        CustomFieldDef {
            id: CustomFieldId(1),
            key: "f".into(),
            label: "F".into(),
            field_type,
            options: options.iter().map(|s| s.to_string()).collect(),
            required: false,
            created_at: clock::now(),
        }
    }

    #[test]
    fn numbers_have_one_canonical_form() {
        let d = def(FieldType::Number, &[]);
        assert_eq!(stored_values(&d, &json!(5), false).unwrap(), vec!["5"]);
        assert_eq!(stored_values(&d, &json!(5.0), false).unwrap(), vec!["5"]);
        assert_eq!(stored_values(&d, &json!(2.5), false).unwrap(), vec!["2.5"]);
        assert!(stored_values(&d, &json!("5"), false).is_err());
        assert_eq!(json_value(&d, vec!["5".into()]), json!(5));
    }

    #[test]
    fn numbers_stay_within_their_bounds() {
        let d = def(FieldType::Number, &[]);
        for n in [1e300, -1.79e308, 1e16] {
            assert_eq!(
                stored_values(&d, &json!(n), false).unwrap_err().code,
                "range"
            );
        }
        for n in [1e-300, 1e-7, 0.1234567] {
            assert_eq!(
                stored_values(&d, &json!(n), false).unwrap_err().code,
                "precision"
            );
        }
        assert_eq!(
            stored_values(&d, &json!(1e15), false).unwrap(),
            vec!["1000000000000000"]
        );
        assert_eq!(
            stored_values(&d, &json!(-0.000001), false).unwrap(),
            vec!["-0.000001"]
        );
        assert_eq!(
            stored_values(&d, &json!(123456789.123456), false).unwrap(),
            vec!["123456789.123456"]
        );
    }

    #[test]
    fn dates_and_selects_are_checked() {
        let d = def(FieldType::Date, &[]);
        assert!(stored_values(&d, &json!("2026-02-30"), false).is_err());
        assert_eq!(
            stored_values(&d, &json!("2026-02-28"), false).unwrap(),
            vec!["2026-02-28"]
        );
        let s = def(FieldType::MultiSelect, &["a", "b"]);
        assert_eq!(
            stored_values(&s, &json!(["b", "a", "b"]), false).unwrap(),
            vec!["b", "a"]
        );
        assert!(stored_values(&s, &json!(["c"]), false).is_err());
        assert!(stored_values(&s, &json!("a"), false).is_err());
        assert_eq!(stored_values(&s, &json!("a"), true).unwrap(), vec!["a"]);
    }

    #[test]
    fn keys_are_plain_identifiers() {
        assert!(valid_key("company_size"));
        assert!(!valid_key("Company"));
        assert!(!valid_key("1st"));
        assert!(!valid_key(""));
    }
}
