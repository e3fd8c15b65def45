//! Orders: an amount in integer fen, a currency, a product category and a status (a refunded
//! order no longer counts). An `external_ref` is unique per tenant, so an ERP that sends an
//! order again gets the first answer, and a different order under a known reference is a 409.

use crate::kernel::clock;
use sea_orm::{ActiveModelTrait, Set};
use sha2::{Digest, Sha256};

use super::*;
use crate::kernel::error::ErrorCode;
use crate::kernel::ids::OrderId;
use crate::kernel::values::OrderStatus;
use crate::rules::validate::CURRENCIES;
use crate::store::entities::order;

/// The largest amount one order may have: 10 亿元.
pub const AMOUNT_MAX_FEN: i64 = 100_000_000_000;
/// Longest external reference and product category, in characters.
const REF_MAX: usize = 64;

#[derive(Debug, Clone)]
pub struct NewOrder {
    pub customer_id: CustomerId,
    pub amount_fen: i64,
    pub currency: Option<String>,
    pub product_category: Option<String>,
    pub status: Option<OrderStatus>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub external_ref: Option<String>,
    pub amount_fen: i64,
    pub currency: String,
    pub product_category: Option<String>,
    pub status: OrderStatus,
    pub occurred_at: DateTime<Utc>,
    pub created_by: Option<StaffId>,
    pub created_at: DateTime<Utc>,
}

impl From<order::Model> for Order {
    fn from(m: order::Model) -> Self {
        Order {
            id: m.id,
            customer_id: m.customer_id,
            external_ref: m.external_ref,
            amount_fen: m.amount_fen,
            currency: m.currency,
            product_category: m.product_category,
            status: m.status,
            occurred_at: m.occurred_at,
            created_by: m.created_by,
            created_at: m.created_at,
        }
    }
}

/// An order checked, with the digest that tells a re-send from a different order.
struct CheckedOrder {
    amount_fen: i64,
    currency: String,
    product_category: Option<String>,
    status: OrderStatus,
    occurred_at: DateTime<Utc>,
    external_ref: Option<String>,
    digest: String,
}

fn check(new: &NewOrder, now: DateTime<Utc>) -> DomainResult<CheckedOrder> {
    let mut issues = Vec::new();
    if !(0..=AMOUNT_MAX_FEN).contains(&new.amount_fen) {
        issues.push(FieldIssue::new(
            "amount_fen",
            "range",
            format!("a whole number of fen from 0 to {AMOUNT_MAX_FEN}"),
        ));
    }
    let currency = new
        .currency
        .as_deref()
        .map(str::trim)
        .unwrap_or("CNY")
        .to_owned();
    if !CURRENCIES.contains(&currency.as_str()) {
        issues.push(FieldIssue::new(
            "currency",
            "unknown_currency",
            format!("one of {}", CURRENCIES.join(", ")),
        ));
    }
    let product_category = text(
        "product_category",
        new.product_category.clone(),
        REF_MAX,
        &mut issues,
    );
    let external_ref = text(
        "external_ref",
        new.external_ref.clone(),
        REF_MAX,
        &mut issues,
    );
    let occurred_at = occurred(new.occurred_at, now, &mut issues);
    if !issues.is_empty() {
        return Err(customers::rejected(issues));
    }
    let status = new.status.unwrap_or(OrderStatus::Paid);
    // The order as the sender described it; the arrival time is not part of it.
    let canonical = serde_json::json!([
        new.customer_id,
        new.amount_fen,
        currency,
        product_category,
        status.as_str(),
        new.occurred_at.map(|t| t.timestamp_micros()),
    ]);
    let digest = hex::encode(Sha256::digest(canonical.to_string().as_bytes()));
    Ok(CheckedOrder {
        amount_fen: new.amount_fen,
        currency,
        product_category,
        status,
        occurred_at,
        external_ref,
        digest,
    })
}

impl Facts<'_> {
    /// Records an order (or answers the one already recorded under its `external_ref`).
    #[tracing::instrument(skip_all, fields(customer = %new.customer_id))]
    pub async fn record_order(&self, new: NewOrder) -> DomainResult<Recorded<Order>> {
        self.staff_actor()?;
        let checked = check(&new, clock::now())?;
        let mut tries = 0;
        loop {
            tries += 1;
            let outcome = retry::retrying("facts.record_order", || {
                self.record_order_once(&new, &checked)
            })
            .await;
            match outcome {
                // A concurrent send of the same reference won the unique index: read its answer.
                Err(DomainError::Taken {
                    code: ErrorCode::ExternalRefConflict,
                    ..
                }) if tries == 1 => {}
                other => return other,
            }
        }
    }

    async fn record_order_once(
        &self,
        new: &NewOrder,
        checked: &CheckedOrder,
    ) -> DomainResult<Recorded<Order>> {
        let txn = self.db.begin().await?;
        let row = self.lock(&txn, new.customer_id).await?;
        if let Some(reference) = &checked.external_ref {
            let known = order::Entity::find()
                .filter(order::Column::TenantId.eq(row.tenant_id.0))
                .filter(order::Column::ExternalRef.eq(reference.as_str()))
                .one(&txn)
                .await
                .step("looking up the order's reference")?;
            if let Some(known) = known {
                if known.body_digest == checked.digest {
                    return Ok(Recorded {
                        fact: known.into(),
                        created: false,
                        rule_changes: Vec::new(),
                    });
                }
                return Err(DomainError::Taken {
                    code: ErrorCode::ExternalRefConflict,
                    detail: format!(
                        "order {} already has the external_ref \"{reference}\" with other details",
                        known.id
                    ),
                    existing_id: Some(known.id.0),
                });
            }
        }
        let now = clock::now();
        let model = order::ActiveModel {
            tenant_id: Set(row.tenant_id),
            customer_id: Set(row.id),
            external_ref: Set(checked.external_ref.clone()),
            amount_fen: Set(checked.amount_fen),
            currency: Set(checked.currency.clone()),
            product_category: Set(checked.product_category.clone()),
            status: Set(checked.status),
            occurred_at: Set(checked.occurred_at),
            body_digest: Set(checked.digest.clone()),
            created_by: Set(self.staff_id()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .step("inserting the order")?;
        let note = match checked.status {
            OrderStatus::Paid => FactNote::Order(Some(checked.occurred_at)),
            OrderStatus::Refunded => FactNote::Order(None),
        };
        let changes = self
            .settle(
                &txn,
                &row,
                note,
                ("order.recorded", model.id.to_string()),
                now,
            )
            .await?;
        txn.commit().await?;
        Ok(Recorded {
            fact: model.into(),
            created: true,
            rule_changes: changes,
        })
    }

    /// Marks an order refunded: it no longer counts. Refunding it again changes nothing.
    #[tracing::instrument(skip_all, fields(order = %id))]
    pub async fn refund_order(&self, id: OrderId) -> DomainResult<Recorded<Order>> {
        let staff = self.staff_actor()?;
        retry::retrying("facts.refund_order", || async {
            let txn = self.db.begin().await?;
            // A locking read, so that the reads after the customer's lock see its latest state.
            let found = order::Entity::find_by_id(id)
                .filter(order::Column::TenantId.eq(staff.tenant.0))
                .lock_exclusive()
                .one(&txn)
                .await?
                .ok_or(DomainError::NotFound("order"))?;
            let row = self
                .lock(&txn, found.customer_id)
                .await
                .map_err(|_| DomainError::NotFound("order"))?;
            if found.status == OrderStatus::Refunded {
                return Ok(Recorded {
                    fact: found.into(),
                    created: false,
                    rule_changes: Vec::new(),
                });
            }
            let mut active: order::ActiveModel = found.into();
            active.status = Set(OrderStatus::Refunded);
            let model = active.update(&txn).await.step("refunding the order")?;
            let changes = self
                .settle(
                    &txn,
                    &row,
                    FactNote::Order(None),
                    ("order.refunded", id.to_string()),
                    clock::now(),
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

    /// Records up to [`BULK_MAX`] orders, each on its own.
    pub async fn record_orders(
        &self,
        items: Vec<NewOrder>,
    ) -> DomainResult<Vec<ItemOutcome<Order>>> {
        self.staff_actor()?;
        self.bulk(items, |item| self.record_order(item)).await
    }

    /// The customer's orders, latest first.
    pub async fn orders(
        &self,
        customer: CustomerId,
        limit: u64,
        cursor_text: Option<&str>,
    ) -> DomainResult<FactPage<Order>> {
        let row = self.visible(customer).await?;
        page_of(
            self.db,
            order::Entity::find().filter(order::Column::CustomerId.eq(row.id.0)),
            (order::Column::OccurredAt, order::Column::Id),
            limit,
            cursor_text,
            |r| (r.occurred_at, r.id.0),
        )
        .await
    }
}
