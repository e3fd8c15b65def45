//! Activity events: a visit, a page view, a login, or a tenant's own `custom:<name>` event,
//! with a small JSON object of properties. Staff and servers send them for the customers they
//! see; the mini-program sends them with a visitor token for the visitor's own records.

use crate::kernel::clock;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Map, Value};

use super::*;
use crate::kernel::ids::EventId;
use crate::rules;
use crate::store::entities::activity_event;

/// Largest properties object, as JSON text.
pub const PROPERTIES_MAX_BYTES: usize = 4_096;
/// Most properties on one event.
const PROPERTIES_MAX_KEYS: usize = 50;

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub customer_id: CustomerId,
    pub kind: String,
    pub properties: Map<String, Value>,
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActivityEvent {
    pub id: EventId,
    pub customer_id: CustomerId,
    pub kind: String,
    pub properties: Map<String, Value>,
    pub occurred_at: DateTime<Utc>,
    /// The staff member who sent it; `None` for the visitor's own mini-program.
    pub sent_by: Option<StaffId>,
    pub created_at: DateTime<Utc>,
}

impl From<activity_event::Model> for ActivityEvent {
    fn from(m: activity_event::Model) -> Self {
        ActivityEvent {
            id: m.id,
            customer_id: m.customer_id,
            kind: m.kind,
            properties: m
                .properties
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or_default(),
            occurred_at: m.occurred_at,
            sent_by: m.sent_by,
            created_at: m.created_at,
        }
    }
}

impl Facts<'_> {
    #[tracing::instrument(skip_all, fields(customer = %new.customer_id, kind = %new.kind))]
    pub async fn record_event(&self, new: NewEvent) -> DomainResult<Recorded<ActivityEvent>> {
        let now = clock::now();
        let mut issues = Vec::new();
        let kind = new.kind.trim().to_owned();
        if !rules::event_kind(&kind) {
            issues.push(FieldIssue::new(
                "kind",
                "unknown_kind",
                "visit, page_view, login or custom:<name> (letters, digits, _ - .; at most 64 characters)",
            ));
        }
        let properties = Value::Object(new.properties.clone()).to_string();
        if properties.len() > PROPERTIES_MAX_BYTES || new.properties.len() > PROPERTIES_MAX_KEYS {
            issues.push(FieldIssue::new(
                "properties",
                "size",
                format!(
                    "at most {PROPERTIES_MAX_KEYS} properties and {PROPERTIES_MAX_BYTES} bytes of JSON"
                ),
            ));
        }
        let occurred_at = occurred(new.occurred_at, now, &mut issues);
        if !issues.is_empty() {
            return Err(customers::rejected(issues));
        }
        let stored = (!new.properties.is_empty()).then_some(properties);
        retry::retrying("facts.record_event", || async {
            let txn = self.db.begin().await?;
            let row = self.lock(&txn, new.customer_id).await?;
            let now = clock::now();
            let model = activity_event::ActiveModel {
                tenant_id: Set(row.tenant_id),
                customer_id: Set(row.id),
                kind: Set(kind.clone()),
                properties: Set(stored.clone()),
                occurred_at: Set(occurred_at),
                sent_by: Set(self.staff_id()),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .step("inserting the event")?;
            let changes = self
                .settle(
                    &txn,
                    &row,
                    FactNote::Active(occurred_at),
                    ("event.recorded", model.id.to_string()),
                    now,
                )
                .await?;
            txn.commit().await?;
            Ok(Recorded {
                fact: model.into(),
                created: true,
                rule_changes: changes,
            })
        })
        .await
    }

    pub async fn record_events(
        &self,
        items: Vec<NewEvent>,
    ) -> DomainResult<Vec<ItemOutcome<ActivityEvent>>> {
        self.bulk(items, |item| self.record_event(item)).await
    }

    pub async fn events(
        &self,
        customer: CustomerId,
        limit: u64,
        cursor_text: Option<&str>,
    ) -> DomainResult<FactPage<ActivityEvent>> {
        let row = self.visible(customer).await?;
        page_of(
            self.db,
            activity_event::Entity::find().filter(activity_event::Column::CustomerId.eq(row.id.0)),
            (
                activity_event::Column::OccurredAt,
                activity_event::Column::Id,
            ),
            limit,
            cursor_text,
            |r| (r.occurred_at, r.id.0),
        )
        .await
    }
}
