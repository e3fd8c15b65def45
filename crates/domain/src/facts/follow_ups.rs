//! Follow-ups: a call, a visit, a WeChat conversation, a meeting; what was said, the project
//! stage the customer is at afterwards (one of the tenant's stages) and when to follow up next.

use crate::kernel::clock;
use chrono::NaiveDate;
use sea_orm::{ActiveModelTrait, Set};

use super::*;
use crate::kernel::ids::FollowUpId;
use crate::kernel::values::FollowUpKind;
use crate::rulebook;
use crate::store::entities::follow_up;

/// Longest follow-up text, in characters.
pub const CONTENT_MAX: usize = 2_000;

#[derive(Debug, Clone)]
pub struct NewFollowUp {
    pub customer_id: CustomerId,
    pub kind: FollowUpKind,
    pub content: String,
    pub stage: Option<String>,
    pub next_follow_up_on: Option<NaiveDate>,
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FollowUp {
    pub id: FollowUpId,
    pub customer_id: CustomerId,
    pub author_id: Option<StaffId>,
    pub kind: FollowUpKind,
    pub content: String,
    pub stage: Option<String>,
    pub next_follow_up_on: Option<NaiveDate>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<follow_up::Model> for FollowUp {
    fn from(m: follow_up::Model) -> Self {
        FollowUp {
            id: m.id,
            customer_id: m.customer_id,
            author_id: m.author_id,
            kind: m.kind,
            content: m.content,
            stage: m.stage,
            next_follow_up_on: m.next_follow_up_on,
            occurred_at: m.occurred_at,
            created_at: m.created_at,
        }
    }
}

impl Facts<'_> {
    #[tracing::instrument(skip_all, fields(customer = %new.customer_id))]
    pub async fn record_follow_up(&self, new: NewFollowUp) -> DomainResult<Recorded<FollowUp>> {
        let staff = self.staff_actor()?;
        let now = clock::now();
        let mut issues = Vec::new();
        let content = new.content.trim().to_owned();
        if content.is_empty() || content.chars().count() > CONTENT_MAX {
            issues.push(FieldIssue::new(
                "content",
                "length",
                format!("must be 1 to {CONTENT_MAX} characters long"),
            ));
        }
        let stage = text("stage", new.stage.clone(), 32, &mut issues);
        if let Some(stage) = &stage {
            let stages = rulebook::stages(self.db, staff.tenant).await?;
            if !stages.contains(stage) {
                issues.push(FieldIssue::new(
                    "stage",
                    "unknown_stage",
                    format!("one of the tenant's stages: {}", stages.join(", ")),
                ));
            }
        }
        let occurred_at = occurred(new.occurred_at, now, &mut issues);
        let plausible = |d: &NaiveDate| {
            NaiveDate::from_ymd_opt(2000, 1, 1).is_some_and(|low| *d >= low)
                && NaiveDate::from_ymd_opt(2100, 12, 31).is_some_and(|high| *d <= high)
        };
        if new.next_follow_up_on.is_some_and(|d| !plausible(&d)) {
            issues.push(FieldIssue::new(
                "next_follow_up_on",
                "range",
                "a date from 2000-01-01 to 2100-12-31",
            ));
        }
        if !issues.is_empty() {
            return Err(customers::rejected(issues));
        }
        retry::retrying("facts.record_follow_up", || async {
            let txn = self.db.begin().await?;
            let row = self.lock(&txn, new.customer_id).await?;
            let now = clock::now();
            let model = follow_up::ActiveModel {
                tenant_id: Set(row.tenant_id),
                customer_id: Set(row.id),
                author_id: Set(Some(staff.id)),
                kind: Set(new.kind),
                content: Set(content.clone()),
                stage: Set(stage.clone()),
                next_follow_up_on: Set(new.next_follow_up_on),
                occurred_at: Set(occurred_at),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .step("inserting the follow-up")?;
            let note = FactNote::FollowUp {
                id: model.id,
                at: occurred_at,
                stage: stage.as_deref(),
            };
            let changes = self
                .settle(
                    &txn,
                    &row,
                    note,
                    ("follow_up.recorded", model.id.to_string()),
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

    pub async fn record_follow_ups(
        &self,
        items: Vec<NewFollowUp>,
    ) -> DomainResult<Vec<ItemOutcome<FollowUp>>> {
        self.staff_actor()?;
        self.bulk(items, |item| self.record_follow_up(item)).await
    }

    pub async fn follow_ups(
        &self,
        customer: CustomerId,
        limit: u64,
        cursor_text: Option<&str>,
    ) -> DomainResult<FactPage<FollowUp>> {
        let row = self.visible(customer).await?;
        page_of(
            self.db,
            follow_up::Entity::find().filter(follow_up::Column::CustomerId.eq(row.id.0)),
            (follow_up::Column::OccurredAt, follow_up::Column::Id),
            limit,
            cursor_text,
            |r| (r.occurred_at, r.id.0),
        )
        .await
    }
}
