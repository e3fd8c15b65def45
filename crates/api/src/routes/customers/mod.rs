//! Customers: records, manual and batch tagging, tag history, and tag-filtered lists.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use scantag_domain::customers::{
    BatchTagging, BatchTarget, Customer, CustomerPatch, CustomerTag, Customers, NewCustomer,
    TagSource,
};
use scantag_domain::search::{self, Filter};
use scantag_domain::{CustomerId, StaffId, TagId};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::app;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{StaffCaller, ValidJson, ValidQuery, from_value};
use crate::state::AppState;

mod lists;

pub use lists::{
    BatchTagsRequest, BatchTagsResponse, FilterRequest, SearchBody, SearchRequest, SearchResponse,
    batch_tags, search_customers,
};

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
pub(crate) fn nullable<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TagSourceView {
    /// Set by a person in the app.
    Manual,
    /// Set by an integration through the API.
    Api,
    /// Set by the capture channel the customer came through.
    Channel,
    /// Set by a tagging rule.
    Rule,
    /// Set by an import.
    Import,
}

impl From<TagSource> for TagSourceView {
    fn from(s: TagSource) -> Self {
        match s {
            TagSource::Manual => TagSourceView::Manual,
            TagSource::Api => TagSourceView::Api,
            TagSource::Channel => TagSourceView::Channel,
            TagSource::Rule => TagSourceView::Rule,
            TagSource::Import => TagSourceView::Import,
        }
    }
}

/// A tag on a customer and why it is there.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "tag_id": 7, "name": "高价值客户", "color": "#F5222D", "group_id": 2, "group_name": "客户价值",
    "source": "manual", "reason": null, "assigned_by": 12, "assigned_at": "2026-11-20T03:00:00Z",
    "rule_id": null, "rule_version": null, "evidence": null
}))]
pub struct CustomerTagView {
    pub tag_id: i64,
    pub name: String,
    pub color: String,
    pub group_id: i64,
    pub group_name: String,
    pub source: TagSourceView,
    /// Why an automatic source set it (e.g. the rule or channel).
    pub reason: Option<String>,
    /// The staff member who set it, if a person did.
    pub assigned_by: Option<i64>,
    pub assigned_at: DateTime<Utc>,
    /// For `source = rule`: the rule and the version that assigned it.
    pub rule_id: Option<i64>,
    pub rule_version: Option<i32>,
    /// For `source = rule`: the values that satisfied the rule when it assigned the tag
    /// (`holds[]`: each condition node that held, with its JSON pointer, value and words).
    #[schema(value_type = Option<Object>)]
    pub evidence: Option<Value>,
}

impl From<CustomerTag> for CustomerTagView {
    fn from(t: CustomerTag) -> Self {
        CustomerTagView {
            tag_id: t.tag_id.0,
            name: t.name,
            color: t.color,
            group_id: t.group_id.0,
            group_name: t.group_name,
            source: t.source.into(),
            reason: t.reason,
            assigned_by: t.assigned_by.map(|s| s.0),
            assigned_at: t.assigned_at,
            rule_id: t.rule_id.map(|r| r.0),
            rule_version: t.rule_version,
            evidence: t.evidence,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1024, "name": "张伟", "phone": "13800138000", "company": "星河科技", "industry": "制造业",
    "region": "上海", "owner_id": 12, "source_channel_id": null, "project_stage": "方案沟通中",
    "custom_fields": {"company_size": "51-500"},
    "tags": [{"tag_id": 7, "name": "高价值客户", "color": "#F5222D", "group_id": 2, "group_name": "客户价值",
              "source": "manual", "reason": null, "assigned_by": 12, "assigned_at": "2026-11-20T03:00:00Z",
              "rule_id": null, "rule_version": null, "evidence": null}],
    "created_at": "2026-11-01T08:00:00Z", "updated_at": "2026-11-20T03:00:00Z",
    "last_active_at": null, "last_follow_up_at": null, "last_order_at": null
}))]
pub struct CustomerView {
    pub id: i64,
    pub name: String,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub industry: Option<String>,
    pub region: Option<String>,
    /// The staff member who owns the customer; `null` for the unassigned pool.
    pub owner_id: Option<i64>,
    /// The capture channel the customer first came through.
    pub source_channel_id: Option<i64>,
    pub project_stage: Option<String>,
    /// Values of the tenant's custom fields, by key.
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    pub tags: Vec<CustomerTagView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_active_at: Option<DateTime<Utc>>,
    pub last_follow_up_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> Self {
        CustomerView {
            id: c.id.0,
            name: c.name,
            phone: c.phone,
            company: c.company,
            industry: c.industry,
            region: c.region,
            owner_id: c.owner_id.map(|s| s.0),
            source_channel_id: c.source_channel_id,
            project_stage: c.project_stage,
            custom_fields: c.custom_fields,
            tags: c.tags.into_iter().map(CustomerTagView::from).collect(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            last_active_at: c.last_active_at,
            last_follow_up_at: c.last_follow_up_at,
            last_order_at: c.last_order_at,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "张伟", "phone": "13800138000", "company": "星河科技", "project_stage": "初次接触",
    "custom_fields": {"company_size": "51-500"}, "tag_ids": [7]
}))]
pub struct CreateCustomerRequest {
    /// 1–64 characters, at least one of them visible. (Names, phone numbers and custom field
    /// values are checked together, so every bad one is reported at once.)
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// Mainland mobile number; `+86`, spaces, dashes and full-width digits are accepted.
    /// Unique per tenant.
    pub phone: Option<String>,
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub company: Option<String>,
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub industry: Option<String>,
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub region: Option<String>,
    /// Staff id of the owner (sales reps may only name themselves; default: themselves, or the
    /// unassigned pool for admins and managers).
    #[validate(range(min = 1))]
    #[schema(minimum = 1)]
    pub owner_id: Option<i64>,
    #[validate(length(max = 32))]
    #[schema(max_length = 32)]
    pub project_stage: Option<String>,
    /// Values by custom field key.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// Tags to put on the customer (at most 50).
    #[serde(default)]
    #[validate(length(max = 50))]
    #[schema(max_items = 50)]
    pub tag_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "patch_not_empty"))]
#[schema(example = json!({"project_stage": "已报价", "custom_fields": {"company_size": null}}))]
pub struct UpdateCustomerRequest {
    /// 1–64 characters, at least one of them visible.
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    /// `null` clears the phone number.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub company: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub region: Option<Option<String>>,
    /// Admins and managers only; `null` returns the customer to the unassigned pool.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    pub owner_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub project_stage: Option<Option<String>>,
    /// Keys given replace their values; `null` removes a value.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
}

fn patch_not_empty(r: &UpdateCustomerRequest) -> Result<(), ValidationError> {
    let any = r.name.is_some()
        || r.phone.is_some()
        || r.company.is_some()
        || r.industry.is_some()
        || r.region.is_some()
        || r.owner_id.is_some()
        || r.project_stage.is_some()
        || r.custom_fields.is_some();
    if any {
        Ok(())
    } else {
        let mut err = ValidationError::new("empty");
        err.message = Some("give at least one field to change".into());
        Err(err)
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tag_id": 7, "note": "展会现场确认预算"}))]
pub struct AddTagRequest {
    #[validate(range(min = 1))]
    #[schema(minimum = 1)]
    pub tag_id: i64,
    /// Recorded in the tag history.
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerTags {
    /// The customer's tags after the change.
    pub tags: Vec<CustomerTagView>,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size, 1–200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[validate(length(min = 1, max = 64))]
    #[param(min_length = 1, max_length = 64)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RemoveTagQuery {
    /// Recorded in the tag history.
    #[validate(length(max = 200))]
    #[param(max_length = 200)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 88, "tag_id": 7, "tag_name": "高价值客户", "action": "add", "source": "manual",
    "actor_id": 12, "note": "展会现场确认预算", "reason": null, "rule_id": null, "rule_version": null,
    "created_at": "2026-11-20T03:00:00Z"
}))]
pub struct TagHistoryView {
    pub id: i64,
    pub tag_id: i64,
    pub tag_name: String,
    /// `add` or `remove`.
    pub action: String,
    pub source: TagSourceView,
    pub actor_id: Option<i64>,
    pub note: Option<String>,
    /// Why an automatic source made the change (for a rule: its name, version and the values
    /// that satisfied it, or that it no longer holds).
    pub reason: Option<String>,
    /// For `source = rule`: the rule and its version.
    pub rule_id: Option<i64>,
    pub rule_version: Option<i32>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagHistoryPage {
    /// Newest first.
    pub items: Vec<TagHistoryView>,
    pub next_cursor: Option<String>,
}

/// Create a customer.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    request_body = CreateCustomerRequest,
    responses(
        (status = 201, description = "The new customer", body = CustomerView),
        (status = 403, description = "Visitors cannot create customers (`staff_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another customer has this phone number (`phone_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: phone, custom fields, unknown or archived tags, unknown owner", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/customers")]
pub async fn create_customer(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<CreateCustomerRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let customer = Customers::new(&state.db, &caller.actor())
        .create(NewCustomer {
            name: r.name,
            phone: r.phone,
            company: r.company,
            industry: r.industry,
            region: r.region,
            owner_id: r.owner_id.map(StaffId),
            project_stage: r.project_stage,
            custom_fields: r.custom_fields,
            tag_ids: r.tag_ids.into_iter().map(TagId).collect(),
        })
        .await?;
    Ok(HttpResponse::Created().json(CustomerView::from(customer)))
}

/// One customer with tags and custom fields.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id", example = 1024)),
    responses(
        (status = 200, description = "The customer", body = CustomerView),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}")]
pub async fn get_customer(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let customer = Customers::new(&state.db, &caller.actor())
        .get(CustomerId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(CustomerView::from(customer)))
}

/// Change a customer's fields.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id", example = 1024)),
    request_body = UpdateCustomerRequest,
    responses(
        (status = 200, description = "The updated customer", body = CustomerView),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another customer has this phone number (`phone_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or no fields", body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/customers/{id}")]
pub async fn update_customer(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    body: ValidJson<UpdateCustomerRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let customer = Customers::new(&state.db, &caller.actor())
        .update(
            CustomerId(id.into_inner()),
            CustomerPatch {
                name: r.name,
                phone: r.phone,
                company: r.company,
                industry: r.industry,
                region: r.region,
                owner_id: r.owner_id.map(|o| o.map(StaffId)),
                project_stage: r.project_stage,
                custom_fields: r.custom_fields,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(CustomerView::from(customer)))
}

/// Delete a customer (soft): it leaves every list and its phone number is free again.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id", example = 1024)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json")
    )
)]
#[delete("/customers/{id}")]
pub async fn delete_customer(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Customers::new(&state.db, &caller.actor())
        .delete(CustomerId(id.into_inner()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Put a tag on a customer. A tag of an exclusive group replaces the group's previous tag.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id", example = 1024)),
    request_body = AddTagRequest,
    responses(
        (status = 200, description = "The customer's tags now", body = CustomerTags),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown tag (`validation_failed`) or archived tag (`tag_archived`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/customers/{id}/tags")]
pub async fn add_tag(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    body: ValidJson<AddTagRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let tags = Customers::new(&state.db, &caller.actor())
        .add_tag(CustomerId(id.into_inner()), TagId(r.tag_id), r.note)
        .await?;
    Ok(HttpResponse::Ok().json(CustomerTags {
        tags: tags.into_iter().map(CustomerTagView::from).collect(),
    }))
}

/// Take a tag off a customer.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Customer id", example = 1024),
        ("tag_id" = i64, Path, description = "Tag id", example = 7),
        RemoveTagQuery
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such customer, or the customer does not carry the tag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json")
    )
)]
#[delete("/customers/{id}/tags/{tag_id}")]
pub async fn remove_tag(
    state: web::Data<AppState>,
    caller: StaffCaller,
    path: web::Path<(i64, i64)>,
    query: ValidQuery<RemoveTagQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, tag) = path.into_inner();
    Customers::new(&state.db, &caller.actor())
        .remove_tag(CustomerId(id), TagId(tag), query.into_inner()?.note)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every tag change of a customer, newest first.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id", example = 1024), HistoryQuery),
    responses(
        (status = 200, description = "A page of history", body = TagHistoryPage),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/tag-history")]
pub async fn tag_history(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    query: ValidQuery<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner()?;
    let before = q.cursor.as_deref().map(search::decode_cursor).transpose()?;
    let (items, next) = Customers::new(&state.db, &caller.actor())
        .tag_history(CustomerId(id.into_inner()), q.limit.unwrap_or(50), before)
        .await?;
    Ok(HttpResponse::Ok().json(TagHistoryPage {
        items: items
            .into_iter()
            .map(|h| TagHistoryView {
                id: h.id,
                tag_id: h.tag_id.0,
                tag_name: h.tag_name,
                action: h.action.to_owned(),
                source: h.source.into(),
                actor_id: h.actor_id.map(|a| a.0),
                note: h.note,
                reason: h.reason,
                rule_id: h.rule_id.map(|r| r.0),
                rule_version: h.rule_version,
                created_at: h.created_at,
            })
            .collect(),
        next_cursor: next.map(search::encode_cursor),
    }))
}
