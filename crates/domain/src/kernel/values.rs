//! The domain's stored value types: the enumerations and JSON documents kept in columns,
//! typed for sea-orm so that entities carry them as they are, and a stored value this code
//! does not know is an error when read, never a guess. Their behaviour lives with the module
//! that owns each (the `impl` blocks there); here are only the shapes, so that the entities in
//! `store` can name them without depending on any module above the kernel.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernel::ids::{StaffId, TagId};

/// Stores a value in a text column as its JSON text (`serde_json::to_string`, so fields keep
/// their declared order, exactly as the rows already stored were written) and reads it back
/// strictly: text that does not parse is an error of the read.
macro_rules! json_text_column {
    ($($ty:ident),+ $(,)?) => {$(
        impl From<$ty> for sea_orm::Value {
            fn from(value: $ty) -> Self {
                // Plain data with string keys only: serializing cannot fail.
                sea_orm::Value::String(Some(serde_json::to_string(&value).unwrap_or_default()))
            }
        }

        impl sea_orm::TryGetable for $ty {
            fn try_get_by<I: sea_orm::ColIdx>(
                res: &sea_orm::QueryResult,
                index: I,
            ) -> Result<Self, sea_orm::TryGetError> {
                let text = <String as sea_orm::TryGetable>::try_get_by(res, index)?;
                serde_json::from_str(&text).map_err(|e| {
                    sea_orm::TryGetError::DbErr(sea_orm::DbErr::Json(format!(
                        "unreadable {}: {e}",
                        stringify!($ty)
                    )))
                })
            }
        }

        impl sea_orm::sea_query::ValueType for $ty {
            fn try_from(v: sea_orm::Value) -> Result<Self, sea_orm::sea_query::ValueTypeErr> {
                match v {
                    sea_orm::Value::String(Some(text)) => serde_json::from_str(&text)
                        .map_err(|_| sea_orm::sea_query::ValueTypeErr),
                    _ => Err(sea_orm::sea_query::ValueTypeErr),
                }
            }

            fn type_name() -> String {
                stringify!($ty).to_owned()
            }

            fn array_type() -> sea_orm::sea_query::ArrayType {
                sea_orm::sea_query::ArrayType::String
            }

            fn column_type() -> sea_orm::sea_query::ColumnType {
                sea_orm::sea_query::ColumnType::Text
            }
        }

        impl sea_orm::sea_query::Nullable for $ty {
            fn null() -> sea_orm::Value {
                sea_orm::Value::String(None)
            }
        }

        impl sea_orm::IntoActiveValue<$ty> for $ty {
            fn into_active_value(self) -> sea_orm::ActiveValue<$ty> {
                sea_orm::ActiveValue::set(self)
            }
        }
    )+};
}

json_text_column!(FieldOptions, Conflicts, OwnerPolicy, FormFields, TagIds);

/// A staff member's role; `access::policy` says what each may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Role {
    /// Manages the tenant: staff, invites, settings, and everything a manager can do.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// Sees and manages every customer of the tenant.
    #[sea_orm(string_value = "manager")]
    Manager,
    /// Sees and works the customers they own.
    #[sea_orm(string_value = "sales")]
    Sales,
}

/// Whose session it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum SubjectKind {
    #[sea_orm(string_value = "staff")]
    Staff,
    #[sea_orm(string_value = "visitor")]
    Visitor,
}

/// The type of a custom customer field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum FieldType {
    #[sea_orm(string_value = "text")]
    Text,
    #[sea_orm(string_value = "number")]
    Number,
    #[sea_orm(string_value = "date")]
    Date,
    #[sea_orm(string_value = "single_select")]
    SingleSelect,
    #[sea_orm(string_value = "multi_select")]
    MultiSelect,
}

/// The choices of a select field, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldOptions(pub Vec<String>);

/// What a tag group describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Dimension {
    /// Who the customer is: region, industry, company size.
    #[sea_orm(string_value = "basic")]
    Basic,
    /// What the customer does: visits, purchases, channel.
    #[sea_orm(string_value = "behaviour")]
    Behaviour,
    /// What the customer is worth: spend, frequency, tiers.
    #[sea_orm(string_value = "value")]
    Value,
    /// Where the customer is: new, active, dormant, churned.
    #[sea_orm(string_value = "lifecycle")]
    Lifecycle,
    #[sea_orm(string_value = "custom")]
    Custom,
}

/// Whether a tag may still be assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum TagStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "archived")]
    Archived,
}

/// What a task is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum TaskKind {
    /// A customer was recorded for the first time.
    #[sea_orm(string_value = "new_customer")]
    NewCustomer,
    /// A known customer came back through a channel.
    #[sea_orm(string_value = "repeat_visit")]
    RepeatVisit,
    /// A rule's condition became true for a customer.
    #[sea_orm(string_value = "rule")]
    Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum TaskStatus {
    #[sea_orm(string_value = "open")]
    Open,
    #[sea_orm(string_value = "done")]
    Done,
}

/// Whether a capture recorded a new customer or completed a known one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Outcome {
    #[sea_orm(string_value = "created")]
    Created,
    #[sea_orm(string_value = "merged")]
    Merged,
}

/// Which identity found the existing customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum MatchedBy {
    #[sea_orm(string_value = "unionid")]
    Unionid,
    #[sea_orm(string_value = "openid")]
    Openid,
    #[sea_orm(string_value = "phone")]
    Phone,
}

/// A submitted value that differs from what the record already held; the record keeps its
/// value, the capture keeps this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub field: String,
    pub submitted: serde_json::Value,
}

/// The conflicts of one capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Conflicts(pub Vec<Conflict>);

/// Who becomes the owner of a customer captured through the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OwnerPolicy {
    /// Always this staff member.
    Fixed { staff_id: StaffId },
    /// Each new customer goes to the next active member of the list, in turn.
    RoundRobin { staff_ids: Vec<StaffId> },
    /// Nobody: the customer waits in the unassigned pool.
    Pool,
}

/// One field of the capture form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormField {
    /// `name`, `phone`, `company`, `industry`, `region`, or `custom_fields.<key>`.
    pub key: String,
    #[serde(default)]
    pub required: bool,
    /// Shown instead of the field's own label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A channel's form, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FormFields(pub Vec<FormField>);

/// A channel's default tags, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TagIds(pub Vec<TagId>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_columns_are_written_as_the_rows_already_stored() {
        let text = |value: sea_orm::Value| match value {
            sea_orm::Value::String(Some(text)) => text,
            other => panic!("not text: {other:?}"),
        };
        assert_eq!(
            text(
                OwnerPolicy::Fixed {
                    staff_id: StaffId(3)
                }
                .into()
            ),
            r#"{"type":"fixed","staff_id":3}"#
        );
        assert_eq!(
            text(
                OwnerPolicy::RoundRobin {
                    staff_ids: vec![StaffId(1), StaffId(2)]
                }
                .into()
            ),
            r#"{"type":"round_robin","staff_ids":[1,2]}"#
        );
        let form = FormFields(vec![FormField {
            key: "name".to_owned(),
            required: true,
            label: Some("姓名".to_owned()),
        }]);
        assert_eq!(
            text(form.into()),
            r#"[{"key":"name","required":true,"label":"姓名"}]"#
        );
        assert_eq!(text(TagIds(vec![TagId(7), TagId(9)]).into()), "[7,9]");
    }
}

/// Whether an order counts: a refunded order no longer does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum OrderStatus {
    #[sea_orm(string_value = "paid")]
    Paid,
    #[sea_orm(string_value = "refunded")]
    Refunded,
}

/// How a follow-up happened.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum FollowUpKind {
    #[sea_orm(string_value = "call")]
    Call,
    #[sea_orm(string_value = "visit")]
    Visit,
    #[sea_orm(string_value = "wechat")]
    Wechat,
    #[sea_orm(string_value = "meeting")]
    Meeting,
    #[sea_orm(string_value = "other")]
    Other,
}

/// A tenant's project stages, in order (the stages a follow-up may move a customer to).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StageList(pub Vec<String>);

json_text_column!(StageList);
