//! What the evaluator knows of one customer: its fields, its custom field values, and its
//! facts (orders, follow-ups, activity events). Built by the rules engine from the database
//! (or by a test, or a preview, by hand): the evaluator reads nothing else.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::kernel::values::{FollowUpKind, OrderStatus};

/// The value of one field of a customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Text(String),
    Number(f64),
    Time(DateTime<Utc>),
    Date(NaiveDate),
    List(Vec<String>),
}

/// The kinds of value a field holds, which decide the comparisons it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    /// A project stage: one of the tenant's stages.
    Stage,
    Number,
    Time,
    Date,
    Select(Vec<String>),
    MultiSelect(Vec<String>),
    /// Only whether it is set can be asked (the phone number).
    Presence,
}

/// The customer's own fields a rule may read, with their kinds.
pub const STANDARD_FIELDS: [(&str, FieldKind); 13] = [
    ("name", FieldKind::Text),
    ("company", FieldKind::Text),
    ("industry", FieldKind::Text),
    ("region", FieldKind::Text),
    ("project_stage", FieldKind::Stage),
    ("phone", FieldKind::Presence),
    ("owner_id", FieldKind::Number),
    ("source_channel_id", FieldKind::Number),
    ("created_at", FieldKind::Time),
    ("updated_at", FieldKind::Time),
    ("last_order_at", FieldKind::Time),
    ("last_follow_up_at", FieldKind::Time),
    ("last_active_at", FieldKind::Time),
];

/// Where custom fields are named: `custom_fields.<key>`.
pub const CUSTOM_PREFIX: &str = "custom_fields.";

#[derive(Debug, Clone, PartialEq)]
pub struct OrderFact {
    pub occurred_at: DateTime<Utc>,
    pub amount_fen: i64,
    pub currency: String,
    pub product_category: Option<String>,
    pub status: OrderStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpFact {
    pub occurred_at: DateTime<Utc>,
    pub kind: FollowUpKind,
    pub stage: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventFact {
    pub occurred_at: DateTime<Utc>,
    pub kind: String,
    pub properties: Map<String, Value>,
}

/// One customer as rules see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFacts {
    /// Standard fields by name (see [`STANDARD_FIELDS`]); an unset field is absent.
    pub fields: HashMap<&'static str, Datum>,
    /// Custom field values by key; an unset field is absent.
    pub custom: HashMap<String, Datum>,
    pub orders: Vec<OrderFact>,
    pub follow_ups: Vec<FollowUpFact>,
    pub events: Vec<EventFact>,
}

impl CustomerFacts {
    /// The value of a field named as in a condition (`region`, `custom_fields.budget`).
    pub fn field(&self, name: &str) -> Option<&Datum> {
        match name.strip_prefix(CUSTOM_PREFIX) {
            Some(key) => self.custom.get(key),
            None => self.fields.get(name),
        }
    }
}

impl FollowUpKind {
    pub const ALL: [(&'static str, FollowUpKind); 5] = [
        ("call", FollowUpKind::Call),
        ("visit", FollowUpKind::Visit),
        ("wechat", FollowUpKind::Wechat),
        ("meeting", FollowUpKind::Meeting),
        ("other", FollowUpKind::Other),
    ];

    pub fn as_str(self) -> &'static str {
        FollowUpKind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("other", |(t, _)| t)
    }
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Paid => "paid",
            OrderStatus::Refunded => "refunded",
        }
    }
}
