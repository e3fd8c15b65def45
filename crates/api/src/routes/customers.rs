//! Customers: records, manual and batch tagging, tag history, and tag-filtered lists.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use scantag_domain::customers::{
    BatchTagging, BatchTarget, Customer, CustomerPatch, CustomerTag, Customers, NewCustomer,
    TagSource, Viewer,
};
use scantag_domain::search::{self, Filter};
use scantag_domain::staff::Role;
use scantag_domain::{CustomerId, StaffId, TagId, data_version};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{StaffCaller, ValidJson, ValidQuery, from_value};
use crate::state::AppState;

/// How long a cached list page may live; entries are also unreachable as soon as the tenant's
/// data version moves on.
const SEARCH_TTL: std::time::Duration = std::time::Duration::from_secs(300);
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

pub(crate) fn viewer(caller: &StaffCaller) -> Viewer {
    Viewer {
        tenant: caller.tenant(),
        staff: caller.id(),
        sees_all: matches!(caller.role(), Role::Admin | Role::Manager),
    }
}

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
    "source": "manual", "reason": null, "assigned_by": 12, "assigned_at": "2026-11-20T03:00:00Z"
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
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1024, "name": "张伟", "phone": "13800138000", "company": "星河科技", "industry": "制造业",
    "region": "上海", "owner_id": 12, "source_channel_id": null, "project_stage": "方案沟通中",
    "custom_fields": {"company_size": "51-500"},
    "tags": [{"tag_id": 7, "name": "高价值客户", "color": "#F5222D", "group_id": 2, "group_name": "客户价值",
              "source": "manual", "reason": null, "assigned_by": 12, "assigned_at": "2026-11-20T03:00:00Z"}],
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
    "actor_id": 12, "note": "展会现场确认预算", "created_at": "2026-11-20T03:00:00Z"
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
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagHistoryPage {
    /// Newest first.
    pub items: Vec<TagHistoryView>,
    pub next_cursor: Option<String>,
}

/// Which customers to list. Every part is optional; all given parts must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"all_of": [7, 9], "none_of": [12], "project_stage": "方案沟通中"}))]
pub struct FilterRequest {
    /// Customers carrying every one of these tags (at most 20).
    #[serde(default)]
    pub all_of: Vec<i64>,
    /// Customers carrying at least one of these tags (at most 20).
    #[serde(default)]
    pub any_of: Vec<i64>,
    /// Customers carrying none of these tags (at most 20).
    #[serde(default)]
    pub none_of: Vec<i64>,
    pub owner_id: Option<i64>,
    pub source_channel_id: Option<i64>,
    pub project_stage: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub updated_from: Option<DateTime<Utc>>,
    pub updated_to: Option<DateTime<Utc>>,
    /// Custom field equality by key (for a multi-select: carries the option).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// Substring of the name or company, or the last digits of the phone number.
    pub keyword: Option<String>,
}

impl FilterRequest {
    fn to_filter(&self) -> Filter {
        let tags = |ids: &[i64]| ids.iter().map(|&id| TagId(id)).collect();
        Filter {
            all_of: tags(&self.all_of),
            any_of: tags(&self.any_of),
            none_of: tags(&self.none_of),
            owner_id: self.owner_id.map(StaffId),
            source_channel_id: self.source_channel_id,
            project_stage: self.project_stage.clone(),
            created_from: self.created_from,
            created_to: self.created_to,
            updated_from: self.updated_from,
            updated_to: self.updated_to,
            custom_fields: self.custom_fields.clone(),
            keyword: self.keyword.clone(),
        }
    }
}

/// A filter plus paging, all in one flat object.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"all_of": [7, 9], "none_of": [12], "limit": 50}))]
pub struct SearchRequest {
    #[serde(flatten)]
    pub filter: FilterRequest,
    /// Page size, 1–200 (default 50).
    #[schema(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The raw search body. The paging keys are taken out before the rest is read as a
/// [`FilterRequest`], so field errors keep their paths (serde loses them through `flatten`).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct SearchBody(Map<String, Value>);

impl Validate for SearchBody {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}

impl TryFrom<SearchBody> for SearchRequest {
    type Error = ApiError;

    fn try_from(body: SearchBody) -> Result<Self, ApiError> {
        let mut rest = body.0;
        let mut errors = Vec::new();
        let limit = match rest.remove("limit") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64() {
                Some(limit) if (1..=search::PAGE_MAX).contains(&limit) => Some(limit),
                Some(_) => {
                    errors.push(FieldError::new(
                        "limit",
                        "range",
                        format!("must be between 1 and {}", search::PAGE_MAX),
                    ));
                    None
                }
                None => {
                    errors.push(FieldError::new(
                        "limit",
                        "invalid_type",
                        "must be an integer",
                    ));
                    None
                }
            },
        };
        let cursor = match rest.remove("cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(cursor)) => Some(cursor),
            Some(_) => {
                errors.push(FieldError::new(
                    "cursor",
                    "invalid_type",
                    "must be a string",
                ));
                None
            }
        };
        let filter = from_value(Value::Object(rest))
            .map_err(|err| errors.extend(err.errors().iter().cloned()))
            .ok();
        match filter {
            Some(filter) if errors.is_empty() => Ok(SearchRequest {
                filter,
                limit,
                cursor,
            }),
            _ => Err(ApiError::validation(errors)),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Exact number of matching customers, independent of the page.
    pub total: u64,
    /// Newest first.
    pub items: Vec<CustomerView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "batch_is_well_formed"))]
#[schema(example = json!({"add": [7], "remove": [12], "customer_ids": [1024, 1025], "note": "展会后统一标记"}))]
pub struct BatchTagsRequest {
    /// Tags to add (at most 20).
    #[serde(default)]
    #[validate(length(max = 20))]
    #[schema(max_items = 20)]
    pub add: Vec<i64>,
    /// Tags to remove (at most 20).
    #[serde(default)]
    #[validate(length(max = 20))]
    #[schema(max_items = 20)]
    pub remove: Vec<i64>,
    /// The customers to change (1–1000); exactly one of `customer_ids` and `filter`.
    #[validate(length(min = 1, max = 1000))]
    #[schema(min_items = 1, max_items = 1000)]
    pub customer_ids: Option<Vec<i64>>,
    /// Every customer matching this filter (at most 10,000).
    pub filter: Option<FilterRequest>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

fn batch_is_well_formed(r: &BatchTagsRequest) -> Result<(), ValidationError> {
    let fail = |code: &'static str, message: &'static str| {
        let mut err = ValidationError::new(code);
        err.message = Some(message.into());
        Err(err)
    };
    if r.customer_ids.is_some() == r.filter.is_some() {
        return fail("target", "give exactly one of customer_ids and filter");
    }
    if r.add.is_empty() && r.remove.is_empty() {
        return fail("empty", "give tags to add or remove");
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"matched": 120, "added": 118, "removed": 30}))]
pub struct BatchTagsResponse {
    /// Customers the request applied to.
    pub matched: u64,
    /// Tag links created.
    pub added: u64,
    /// Tag links removed.
    pub removed: u64,
}

/// Create a customer.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    request_body = CreateCustomerRequest,
    responses(
        (status = 201, description = "The new customer", body = CustomerView),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
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
    let customer = Customers::new(&state.db, viewer(&caller))
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
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}")]
pub async fn get_customer(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let customer = Customers::new(&state.db, viewer(&caller))
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
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
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
    let customer = Customers::new(&state.db, viewer(&caller))
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
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer visible to the caller", body = Problem, content_type = "application/problem+json")
    )
)]
#[delete("/customers/{id}")]
pub async fn delete_customer(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Customers::new(&state.db, viewer(&caller))
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
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
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
    let tags = Customers::new(&state.db, viewer(&caller))
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
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
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
    Customers::new(&state.db, viewer(&caller))
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
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
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
    let (items, next) = Customers::new(&state.db, viewer(&caller))
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
                created_at: h.created_at,
            })
            .collect(),
        next_cursor: next.map(search::encode_cursor),
    }))
}

/// Add and remove tags on many customers at once: an explicit list of ids, or every customer
/// matching a filter. All or nothing: if anything is invalid, nothing changes.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    request_body = BatchTagsRequest,
    responses(
        (status = 200, description = "What changed", body = BatchTagsResponse),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request, unknown customers or tags (`validation_failed`), archived tags (`tag_archived`), or a filter matching over 10,000 customers (`too_many_customers`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/customers/batch-tags")]
pub async fn batch_tags(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<BatchTagsRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let target = match (r.customer_ids, r.filter) {
        (Some(ids), _) => BatchTarget::Ids(ids.into_iter().map(CustomerId).collect()),
        (None, Some(filter)) => BatchTarget::Filter(Box::new(filter.to_filter())),
        (None, None) => {
            return Err(ApiError::field(
                "body",
                "target",
                "give customer_ids or filter",
            ));
        }
    };
    let outcome = Customers::new(&state.db, viewer(&caller))
        .batch_tags(BatchTagging {
            add: r.add.into_iter().map(TagId).collect(),
            remove: r.remove.into_iter().map(TagId).collect(),
            target,
            note: r.note,
        })
        .await?;
    Ok(HttpResponse::Ok().json(BatchTagsResponse {
        matched: outcome.matched,
        added: outcome.added,
        removed: outcome.removed,
    }))
}

/// Customers matching tag operators and field filters: the exact total and one page.
///
/// Pages are newest first with an opaque keyset cursor. Answers are cached until the tenant's
/// data changes (a change is visible to the very next request); send `Cache-Control: no-cache`
/// to bypass the cache. The `X-Cache` response header says `hit`, `miss` or `bypass`.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    request_body = SearchRequest,
    responses(
        (status = 200, description = "The total and a page", body = SearchResponse,
         headers(("X-Cache" = String, description = "hit, miss or bypass"))),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter: unknown or foreign tags (`unknown_tag`), contradictions, ranges, limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/customers/search")]
pub async fn search_customers(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<SearchBody>,
) -> Result<HttpResponse, ApiError> {
    let r = SearchRequest::try_from(body.into_inner()?)?;
    let viewer = viewer(&caller);
    let bypass = req
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-cache") || v.contains("no-store"));
    let version = data_version::current(&state.db, viewer.tenant).await?;
    let scope = if viewer.sees_all {
        "all".to_owned()
    } else {
        format!("owner{}", viewer.staff)
    };
    let fingerprint = serde_json::to_vec(&r).map_err(|e| ApiError::internal(&e))?;
    let key = format!(
        "search:{}:v{version}:{scope}:{}",
        viewer.tenant,
        hex::encode(Sha256::digest(&fingerprint))
    );
    if !bypass && let Some(body) = state.cache.get(&key).await {
        return Ok(json_bytes(body, "hit"));
    }
    let cursor = r.cursor.as_deref().map(search::decode_cursor).transpose()?;
    let resolved = search::resolve(&state.db, viewer.tenant, &r.filter.to_filter()).await?;
    let page = search::page(&state.db, &viewer, &resolved, r.limit.unwrap_or(50), cursor).await?;
    let response = SearchResponse {
        total: page.total,
        items: page.items.into_iter().map(CustomerView::from).collect(),
        next_cursor: page.next_cursor,
    };
    let body = serde_json::to_vec(&response).map_err(|e| ApiError::internal(&e))?;
    state.cache.set(&key, &body, SEARCH_TTL).await;
    Ok(json_bytes(body, if bypass { "bypass" } else { "miss" }))
}

fn json_bytes(body: Vec<u8>, cache: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((X_CACHE, HeaderValue::from_static(cache)))
        .body(body)
}
