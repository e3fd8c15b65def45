//! Facts about customers — orders, follow-ups, activity events — one at a time or in bulk
//! (up to 1,000 per request, each item answered on its own), and a customer's facts, newest
//! first. Recording a fact runs the tenant's rules on the customer in the same transaction:
//! the answer lists the tags they changed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use scantag_domain::facts::{
    ActivityEvent, FactPage, Facts, FollowUp, ItemOutcome, NewEvent, NewFollowUp, NewOrder, Order,
    Recorded,
};
use scantag_domain::kernel::values::{FollowUpKind, OrderStatus};
use scantag_domain::{CustomerId, OrderId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::rules::RuleChangeView;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, StaffCaller, ValidJson, ValidQuery};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatusView {
    /// Counts in rules.
    Paid,
    /// No longer counts.
    Refunded,
}

impl From<OrderStatusView> for OrderStatus {
    fn from(s: OrderStatusView) -> Self {
        match s {
            OrderStatusView::Paid => OrderStatus::Paid,
            OrderStatusView::Refunded => OrderStatus::Refunded,
        }
    }
}

impl From<OrderStatus> for OrderStatusView {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::Paid => OrderStatusView::Paid,
            OrderStatus::Refunded => OrderStatusView::Refunded,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKindView {
    Call,
    Visit,
    Wechat,
    Meeting,
    Other,
}

impl From<FollowUpKindView> for FollowUpKind {
    fn from(k: FollowUpKindView) -> Self {
        match k {
            FollowUpKindView::Call => FollowUpKind::Call,
            FollowUpKindView::Visit => FollowUpKind::Visit,
            FollowUpKindView::Wechat => FollowUpKind::Wechat,
            FollowUpKindView::Meeting => FollowUpKind::Meeting,
            FollowUpKindView::Other => FollowUpKind::Other,
        }
    }
}

impl From<FollowUpKind> for FollowUpKindView {
    fn from(k: FollowUpKind) -> Self {
        match k {
            FollowUpKind::Call => FollowUpKindView::Call,
            FollowUpKind::Visit => FollowUpKindView::Visit,
            FollowUpKind::Wechat => FollowUpKindView::Wechat,
            FollowUpKind::Meeting => FollowUpKindView::Meeting,
            FollowUpKind::Other => FollowUpKindView::Other,
        }
    }
}

/// An order to record.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "customer_id": 1024, "amount_fen": 155000, "currency": "CNY", "product_category": "SaaS",
    "status": "paid", "occurred_at": "2026-11-20T06:30:00Z", "external_ref": "ERP-2026-000183"
}))]
pub struct CreateOrderRequest {
    pub customer_id: i64,
    /// The amount in integer fen (1 元 = 100 fen), 0 to 100,000,000,000.
    #[schema(minimum = 0, maximum = 100_000_000_000_i64, example = 155000)]
    pub amount_fen: i64,
    /// ISO 4217; CNY by default. One of CNY, HKD, MOP, TWD, USD, EUR, GBP, JPY, KRW, SGD, AUD, CAD.
    #[validate(length(min = 3, max = 3))]
    #[schema(min_length = 3, max_length = 3, example = "CNY")]
    pub currency: Option<String>,
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub product_category: Option<String>,
    /// `paid` by default.
    pub status: Option<OrderStatusView>,
    /// When the order was placed (default now); at most 5 minutes ahead of the server's clock.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The sender's own id for the order, unique in the tenant: sending the same order again
    /// answers the first order (200); another order under a known reference is a 409.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub external_ref: Option<String>,
}

impl From<CreateOrderRequest> for NewOrder {
    fn from(r: CreateOrderRequest) -> Self {
        NewOrder {
            customer_id: CustomerId(r.customer_id),
            amount_fen: r.amount_fen,
            currency: r.currency,
            product_category: r.product_category,
            status: r.status.map(Into::into),
            occurred_at: r.occurred_at,
            external_ref: r.external_ref,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 501, "customer_id": 1024, "external_ref": "ERP-2026-000183", "amount_fen": 155000,
    "currency": "CNY", "product_category": "SaaS", "status": "paid",
    "occurred_at": "2026-11-20T06:30:00Z", "created_by": 12, "created_at": "2026-11-20T06:31:02Z",
    "rule_changes": []
}))]
pub struct OrderView {
    pub id: i64,
    pub customer_id: i64,
    pub external_ref: Option<String>,
    pub amount_fen: i64,
    pub currency: String,
    pub product_category: Option<String>,
    pub status: OrderStatusView,
    pub occurred_at: DateTime<Utc>,
    /// The staff member (or API key holder) who recorded it.
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The tags the rules changed on the customer because of this request (empty in listings
    /// and for a re-sent order).
    pub rule_changes: Vec<RuleChangeView>,
}

fn order_view(o: Order, changes: Vec<RuleChangeView>) -> OrderView {
    OrderView {
        id: o.id.0,
        customer_id: o.customer_id.0,
        external_ref: o.external_ref,
        amount_fen: o.amount_fen,
        currency: o.currency,
        product_category: o.product_category,
        status: o.status.into(),
        occurred_at: o.occurred_at,
        created_by: o.created_by.map(|s| s.0),
        created_at: o.created_at,
        rule_changes: changes,
    }
}

/// A follow-up to record.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "customer_id": 1024, "kind": "call", "content": "确认了预算和上线时间，下周发报价",
    "stage": "方案沟通中", "next_follow_up_on": "2026-11-27", "occurred_at": "2026-11-20T07:00:00Z"
}))]
pub struct CreateFollowUpRequest {
    pub customer_id: i64,
    pub kind: FollowUpKindView,
    /// 1 to 2,000 characters.
    #[validate(length(min = 1, max = 2000))]
    #[schema(min_length = 1, max_length = 2000)]
    pub content: String,
    /// The project stage after this follow-up: one of the tenant's stages
    /// (`GET /api/v1/project-stages`). The latest follow-up's stage becomes the customer's.
    #[validate(length(min = 1, max = 32))]
    #[schema(min_length = 1, max_length = 32)]
    pub stage: Option<String>,
    pub next_follow_up_on: Option<NaiveDate>,
    /// Default now; at most 5 minutes ahead of the server's clock.
    pub occurred_at: Option<DateTime<Utc>>,
}

impl From<CreateFollowUpRequest> for NewFollowUp {
    fn from(r: CreateFollowUpRequest) -> Self {
        NewFollowUp {
            customer_id: CustomerId(r.customer_id),
            kind: r.kind.into(),
            content: r.content,
            stage: r.stage,
            next_follow_up_on: r.next_follow_up_on,
            occurred_at: r.occurred_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 77, "customer_id": 1024, "author_id": 12, "kind": "call",
    "content": "确认了预算和上线时间，下周发报价", "stage": "方案沟通中",
    "next_follow_up_on": "2026-11-27", "occurred_at": "2026-11-20T07:00:00Z",
    "created_at": "2026-11-20T07:01:00Z", "rule_changes": []
}))]
pub struct FollowUpView {
    pub id: i64,
    pub customer_id: i64,
    pub author_id: Option<i64>,
    pub kind: FollowUpKindView,
    pub content: String,
    pub stage: Option<String>,
    pub next_follow_up_on: Option<NaiveDate>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The tags the rules changed on the customer because of this request.
    pub rule_changes: Vec<RuleChangeView>,
}

fn follow_up_view(f: FollowUp, changes: Vec<RuleChangeView>) -> FollowUpView {
    FollowUpView {
        id: f.id.0,
        customer_id: f.customer_id.0,
        author_id: f.author_id.map(|a| a.0),
        kind: f.kind.into(),
        content: f.content,
        stage: f.stage,
        next_follow_up_on: f.next_follow_up_on,
        occurred_at: f.occurred_at,
        created_at: f.created_at,
        rule_changes: changes,
    }
}

/// An activity event to record.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "customer_id": 1024, "kind": "page_view", "properties": {"page": "/pricing"},
    "occurred_at": "2026-11-20T15:30:00Z"
}))]
pub struct CreateEventRequest {
    pub customer_id: i64,
    /// `visit`, `page_view`, `login`, or `custom:<name>` (letters, digits, `_`, `-`, `.`; at
    /// most 64 characters in all).
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64, example = "visit")]
    pub kind: String,
    /// A JSON object of at most 50 properties and 4 KiB.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// Default now; at most 5 minutes ahead of the server's clock.
    pub occurred_at: Option<DateTime<Utc>>,
}

impl From<CreateEventRequest> for NewEvent {
    fn from(r: CreateEventRequest) -> Self {
        NewEvent {
            customer_id: CustomerId(r.customer_id),
            kind: r.kind,
            properties: r.properties,
            occurred_at: r.occurred_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 3001, "customer_id": 1024, "kind": "page_view", "properties": {"page": "/pricing"},
    "occurred_at": "2026-11-20T15:30:00Z", "sent_by": null, "created_at": "2026-11-20T15:30:01Z",
    "rule_changes": []
}))]
pub struct EventView {
    pub id: i64,
    pub customer_id: i64,
    pub kind: String,
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    pub occurred_at: DateTime<Utc>,
    /// The staff member who sent it; `null` when the visitor's mini-program did.
    pub sent_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The tags the rules changed on the customer because of this request.
    pub rule_changes: Vec<RuleChangeView>,
}

fn event_view(e: ActivityEvent, changes: Vec<RuleChangeView>) -> EventView {
    EventView {
        id: e.id.0,
        customer_id: e.customer_id.0,
        kind: e.kind,
        properties: e.properties,
        occurred_at: e.occurred_at,
        sent_by: e.sent_by.map(|s| s.0),
        created_at: e.created_at,
        rule_changes: changes,
    }
}

fn changes<T>(recorded: &Recorded<T>) -> Vec<RuleChangeView> {
    recorded
        .rule_changes
        .iter()
        .cloned()
        .map(RuleChangeView::from)
        .collect()
}

/// Request, answer and listing types of one kind of fact, named for it so that generated
/// clients read `BulkOrdersRequest`, `OrderList` … rather than generic instances.
macro_rules! fact_types {
    ($request:ident, $item:ident, $response:ident, $list:ident, $new:ty, $view:ty) => {
        /// Up to 1,000 items, each recorded on its own.
        #[derive(Debug, Deserialize, Validate, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $request {
            #[validate(length(min = 1, max = 1000))]
            #[schema(min_items = 1, max_items = 1000)]
            pub items: Vec<$new>,
        }

        /// One item's answer: `status` is what the single endpoint would have answered (201
        /// created, 200 already recorded, 404, 409, 422); `result` on success, `error`
        /// otherwise.
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $item {
            /// The item's position in the request.
            pub index: usize,
            pub status: u16,
            pub result: Option<$view>,
            pub error: Option<Problem>,
        }

        #[derive(Debug, Serialize, ToSchema)]
        pub struct $response {
            pub succeeded: usize,
            pub failed: usize,
            /// In the order of the request.
            pub items: Vec<$item>,
        }

        impl From<Bulk<$view>> for $response {
            fn from(b: Bulk<$view>) -> Self {
                $response {
                    succeeded: b.succeeded,
                    failed: b.failed,
                    items: b
                        .items
                        .into_iter()
                        .map(|(index, status, result, error)| $item {
                            index,
                            status,
                            result,
                            error,
                        })
                        .collect(),
                }
            }
        }

        #[derive(Debug, Serialize, ToSchema)]
        pub struct $list {
            /// Latest `occurred_at` first.
            pub items: Vec<$view>,
            pub next_cursor: Option<String>,
        }

        impl From<FactPage<$view>> for $list {
            fn from(p: FactPage<$view>) -> Self {
                $list {
                    items: p.items,
                    next_cursor: p.next_cursor,
                }
            }
        }
    };
}

fact_types!(
    BulkOrdersRequest,
    BulkOrderItem,
    BulkOrdersResponse,
    OrderList,
    CreateOrderRequest,
    OrderView
);
fact_types!(
    BulkFollowUpsRequest,
    BulkFollowUpItem,
    BulkFollowUpsResponse,
    FollowUpList,
    CreateFollowUpRequest,
    FollowUpView
);
fact_types!(
    BulkEventsRequest,
    BulkEventItem,
    BulkEventsResponse,
    EventList,
    CreateEventRequest,
    EventView
);

/// Each item's `(index, status, result, error)`.
pub struct Bulk<V> {
    succeeded: usize,
    failed: usize,
    items: Vec<(usize, u16, Option<V>, Option<Problem>)>,
}

fn bulk<T, V>(outcomes: Vec<ItemOutcome<T>>, view: impl Fn(Recorded<T>) -> V) -> Bulk<V> {
    let mut items = Vec::with_capacity(outcomes.len());
    let (mut succeeded, mut failed) = (0, 0);
    for (index, outcome) in outcomes.into_iter().enumerate() {
        items.push(match outcome {
            ItemOutcome::Done(recorded) => {
                succeeded += 1;
                let status = if recorded.created { 201 } else { 200 };
                (index, status, Some(view(recorded)), None)
            }
            ItemOutcome::Failed(err) => {
                failed += 1;
                let problem = ApiError::from(err).problem();
                (index, problem.status, None, Some(problem))
            }
        });
    }
    Bulk {
        succeeded,
        failed,
        items,
    }
}

/// A page of a customer's facts.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FactsQuery {
    /// Page size, 1–200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[validate(length(min = 1, max = 64))]
    #[param(min_length = 1, max_length = 64)]
    pub cursor: Option<String>,
}

fn list<T, V>(page: FactPage<T>, view: impl Fn(T) -> V) -> FactPage<V> {
    FactPage {
        items: page.items.into_iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }
}

/// Record an order. Any staff member, for the customers they see.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "The order, with the tags the rules changed", body = OrderView),
        (status = 200, description = "This order was already recorded under its `external_ref`: the first answer", body = OrderView),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another order has this `external_ref` (`external_ref_conflict`, with `existing_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: a negative or fractional amount, an unknown currency, an `occurred_at` in the future …", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/orders")]
pub async fn create_order(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<CreateOrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let recorded = Facts::staff(&state.db, &caller.actor())
        .record_order(r.into())
        .await?;
    let status = if recorded.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let changes = changes(&recorded);
    Ok(HttpResponse::build(status).json(order_view(recorded.fact, changes)))
}

/// Record up to 1,000 orders, each answered on its own.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    request_body = BulkOrdersRequest,
    responses(
        (status = 200, description = "Each item's answer, in order", body = BulkOrdersResponse),
        (status = 422, description = "Not a list of 1 to 1,000 well-formed orders", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/orders/bulk")]
pub async fn bulk_orders(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<BulkOrdersRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let outcomes = Facts::staff(&state.db, &caller.actor())
        .record_orders(r.items.into_iter().map(Into::into).collect())
        .await?;
    let answer: BulkOrdersResponse = bulk(outcomes, |rec| {
        let changes = changes(&rec);
        order_view(rec.fact, changes)
    })
    .into();
    Ok(HttpResponse::Ok().json(answer))
}

/// Mark an order refunded: it no longer counts in rules. Refunding it again changes nothing.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Order id", example = 501)),
    responses(
        (status = 200, description = "The order, refunded, with the tags the rules changed", body = OrderView),
        (status = 404, description = "No such order of a customer visible to the caller", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/orders/{id}/refund")]
pub async fn refund_order(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let recorded = Facts::staff(&state.db, &caller.actor())
        .refund_order(OrderId(id.into_inner()))
        .await?;
    let changes = changes(&recorded);
    Ok(HttpResponse::Ok().json(order_view(recorded.fact, changes)))
}

/// A customer's orders, latest first.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id", example = 1024), FactsQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrderList),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/orders")]
pub async fn customer_orders(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    query: ValidQuery<FactsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner()?;
    let page = Facts::staff(&state.db, &caller.actor())
        .orders(
            CustomerId(id.into_inner()),
            q.limit.unwrap_or(50),
            q.cursor.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(OrderList::from(list(page, |o| order_view(o, Vec::new())))))
}

/// Record a follow-up. Any staff member, for the customers they see; the author is the caller.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    request_body = CreateFollowUpRequest,
    responses(
        (status = 201, description = "The follow-up, with the tags the rules changed", body = FollowUpView),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (an unknown stage, a future `occurred_at` …)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/follow-ups")]
pub async fn create_follow_up(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<CreateFollowUpRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let recorded = Facts::staff(&state.db, &caller.actor())
        .record_follow_up(r.into())
        .await?;
    let changes = changes(&recorded);
    Ok(HttpResponse::Created().json(follow_up_view(recorded.fact, changes)))
}

/// Record up to 1,000 follow-ups, each answered on its own.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    request_body = BulkFollowUpsRequest,
    responses(
        (status = 200, description = "Each item's answer, in order", body = BulkFollowUpsResponse),
        (status = 422, description = "Not a list of 1 to 1,000 well-formed follow-ups", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/follow-ups/bulk")]
pub async fn bulk_follow_ups(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<BulkFollowUpsRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let outcomes = Facts::staff(&state.db, &caller.actor())
        .record_follow_ups(r.items.into_iter().map(Into::into).collect())
        .await?;
    let answer: BulkFollowUpsResponse = bulk(outcomes, |rec| {
        let changes = changes(&rec);
        follow_up_view(rec.fact, changes)
    })
    .into();
    Ok(HttpResponse::Ok().json(answer))
}

/// A customer's follow-ups, latest first.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id", example = 1024), FactsQuery),
    responses(
        (status = 200, description = "A page of follow-ups", body = FollowUpList),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/follow-ups")]
pub async fn customer_follow_ups(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    query: ValidQuery<FactsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner()?;
    let page = Facts::staff(&state.db, &caller.actor())
        .follow_ups(
            CustomerId(id.into_inner()),
            q.limit.unwrap_or(50),
            q.cursor.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(FollowUpList::from(list(page, |f| {
        follow_up_view(f, Vec::new())
    }))))
}

fn facts_for<'a>(state: &'a AppState, caller: &Caller) -> Facts<'a> {
    match caller {
        Caller::Staff(staff) => Facts::staff(&state.db, &staff.actor()),
        Caller::Visitor(visitor) => Facts::visitor(&state.db, &visitor.visitor),
    }
}

/// Record an activity event. Staff for the customers they see; a visitor (the mini-program)
/// for their own customer records — any other customer is a 404.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    request_body = CreateEventRequest,
    responses(
        (status = 201, description = "The event, with the tags the rules changed", body = EventView),
        (status = 404, description = "No such customer visible to (or, for a visitor, belonging to) the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (an unknown kind, properties over 4 KiB …)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/events")]
pub async fn create_event(
    state: web::Data<AppState>,
    caller: Caller,
    body: ValidJson<CreateEventRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let recorded = facts_for(&state, &caller).record_event(r.into()).await?;
    let changes = changes(&recorded);
    Ok(HttpResponse::Created().json(event_view(recorded.fact, changes)))
}

/// Record up to 1,000 activity events, each answered on its own.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    request_body = BulkEventsRequest,
    responses(
        (status = 200, description = "Each item's answer, in order", body = BulkEventsResponse),
        (status = 422, description = "Not a list of 1 to 1,000 well-formed events", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/events/bulk")]
pub async fn bulk_events(
    state: web::Data<AppState>,
    caller: Caller,
    body: ValidJson<BulkEventsRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let outcomes = facts_for(&state, &caller)
        .record_events(r.items.into_iter().map(Into::into).collect())
        .await?;
    let answer: BulkEventsResponse = bulk(outcomes, |rec| {
        let changes = changes(&rec);
        event_view(rec.fact, changes)
    })
    .into();
    Ok(HttpResponse::Ok().json(answer))
}

/// A customer's activity events, latest first.
#[utoipa::path(
    tag = "facts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id", example = 1024), FactsQuery),
    responses(
        (status = 200, description = "A page of events", body = EventList),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/events")]
pub async fn customer_events(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    query: ValidQuery<FactsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner()?;
    let page = Facts::staff(&state.db, &caller.actor())
        .events(
            CustomerId(id.into_inner()),
            q.limit.unwrap_or(50),
            q.cursor.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(EventList::from(list(page, |e| event_view(e, Vec::new())))))
}
