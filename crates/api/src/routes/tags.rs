//! The shared tag library: tag groups (main tags) and tags (sub tags).

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use scantag_domain::library::tags::{
    Dimension, NewTag, NewTagGroup, StatusFilter, Tag, TagChange, TagGroup, TagGroupChange,
    TagLibrary, TagStatus,
};
use scantag_domain::{TagGroupId, TagId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::app;
use crate::error::{ApiError, Problem};
use crate::extract::{StaffCaller, ValidJson, ValidQuery};
use crate::state::AppState;
use scantag_domain::access::policy::Action;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DimensionView {
    /// Who the customer is: region, industry, size.
    Basic,
    /// What the customer does: visits, purchases, channels.
    Behaviour,
    /// What the customer is worth: spend, frequency, tiers.
    Value,
    /// Where the customer is in the lifecycle.
    Lifecycle,
    Custom,
}

impl From<DimensionView> for Dimension {
    fn from(d: DimensionView) -> Self {
        match d {
            DimensionView::Basic => Dimension::Basic,
            DimensionView::Behaviour => Dimension::Behaviour,
            DimensionView::Value => Dimension::Value,
            DimensionView::Lifecycle => Dimension::Lifecycle,
            DimensionView::Custom => Dimension::Custom,
        }
    }
}

impl From<Dimension> for DimensionView {
    fn from(d: Dimension) -> Self {
        match d {
            Dimension::Basic => DimensionView::Basic,
            Dimension::Behaviour => DimensionView::Behaviour,
            Dimension::Value => DimensionView::Value,
            Dimension::Lifecycle => DimensionView::Lifecycle,
            Dimension::Custom => DimensionView::Custom,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TagStatusView {
    Active,
    /// Stays on customers, cannot be newly assigned.
    Archived,
}

impl From<TagStatusView> for TagStatus {
    fn from(s: TagStatusView) -> Self {
        match s {
            TagStatusView::Active => TagStatus::Active,
            TagStatusView::Archived => TagStatus::Archived,
        }
    }
}

impl From<TagStatus> for TagStatusView {
    fn from(s: TagStatus) -> Self {
        match s {
            TagStatus::Active => TagStatusView::Active,
            TagStatus::Archived => TagStatusView::Archived,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 7, "group_id": 2, "group_name": "客户价值", "name": "高价值客户", "color": "#F5222D",
    "definition": "近6个月消费总额超过5000元且购买超过3次", "sort_order": 0, "status": "active",
    "customer_count": 1284, "created_at": "2026-11-01T08:00:00Z", "updated_at": "2026-11-01T08:00:00Z"
}))]
pub struct TagView {
    pub id: i64,
    pub group_id: i64,
    pub group_name: String,
    pub name: String,
    /// `#RRGGBB`.
    pub color: String,
    /// What the tag means and when to use it.
    pub definition: Option<String>,
    pub sort_order: i32,
    pub status: TagStatusView,
    /// Live customers carrying the tag.
    pub customer_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Tag> for TagView {
    fn from(t: Tag) -> Self {
        TagView {
            id: t.id.0,
            group_id: t.group_id.0,
            group_name: t.group_name,
            name: t.name,
            color: t.color,
            definition: t.definition,
            sort_order: t.sort_order,
            status: t.status.into(),
            customer_count: t.customer_count,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 2, "name": "客户价值", "dimension": "value", "exclusive": true,
    "description": "按消费金额与频次划分", "sort_order": 1, "archived": false,
    "created_at": "2026-11-01T08:00:00Z", "updated_at": "2026-11-01T08:00:00Z", "tags": []
}))]
pub struct TagGroupView {
    pub id: i64,
    pub name: String,
    pub dimension: DimensionView,
    /// At most one tag of an exclusive group per customer; setting one replaces the other.
    pub exclusive: bool,
    pub description: Option<String>,
    pub sort_order: i32,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The group's tags (in listings and single reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagView>>,
}

impl TagGroupView {
    fn new(g: TagGroup, tags: Option<Vec<TagView>>) -> Self {
        TagGroupView {
            id: g.id.0,
            name: g.name,
            dimension: g.dimension.into(),
            exclusive: g.exclusive,
            description: g.description,
            sort_order: g.sort_order,
            archived: g.archived,
            created_at: g.created_at,
            updated_at: g.updated_at,
            tags,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagGroupList {
    pub items: Vec<TagGroupView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagList {
    pub items: Vec<TagView>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "客户价值", "dimension": "value", "exclusive": true, "description": "按消费金额与频次划分"}))]
pub struct CreateTagGroupRequest {
    /// Unique in the tenant after normalisation (case, width and spacing are ignored).
    #[validate(custom(function = "unique_name"))]
    #[schema(min_length = 1, max_length = 32)]
    pub name: String,
    pub dimension: DimensionView,
    #[serde(default)]
    pub exclusive: bool,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[serde(default)]
    pub sort_order: i32,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "group_change_not_empty"))]
#[schema(example = json!({"archived": true}))]
pub struct UpdateTagGroupRequest {
    #[validate(custom(function = "unique_name"))]
    #[schema(min_length = 1, max_length = 32)]
    pub name: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    pub sort_order: Option<i32>,
    /// Making a group exclusive fails while a customer carries two of its tags.
    pub exclusive: Option<bool>,
    pub archived: Option<bool>,
}

fn group_change_not_empty(r: &UpdateTagGroupRequest) -> Result<(), ValidationError> {
    let any = r.name.is_some()
        || r.description.is_some()
        || r.sort_order.is_some()
        || r.exclusive.is_some()
        || r.archived.is_some();
    not_empty(any)
}

fn not_empty(any: bool) -> Result<(), ValidationError> {
    if any {
        Ok(())
    } else {
        let mut err = ValidationError::new("empty");
        err.message = Some("give at least one field to change".into());
        Err(err)
    }
}

/// A tag or group name judged here as the library will judge it, so that its errors come
/// together with those of the other fields.
fn unique_name(name: &str) -> Result<(), ValidationError> {
    scantag_domain::kernel::names::checked_unique_name(
        "name",
        name,
        scantag_domain::library::tags::NAME_MAX,
    )
    .map(drop)
    .map_err(crate::extract::issue_error)
}

fn valid_color(color: &str) -> Result<(), ValidationError> {
    if scantag_domain::library::tags::valid_color(color) {
        Ok(())
    } else {
        let mut err = ValidationError::new("color");
        err.message = Some("must be a colour like #1677FF".into());
        Err(err)
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"group_id": 2, "name": "高价值客户", "color": "#F5222D", "definition": "近6个月消费总额超过5000元且购买超过3次"}))]
pub struct CreateTagRequest {
    #[validate(range(min = 1))]
    #[schema(minimum = 1)]
    pub group_id: i64,
    /// Unique in the tenant after normalisation (case, width and spacing are ignored).
    #[validate(custom(function = "unique_name"))]
    #[schema(min_length = 1, max_length = 32)]
    pub name: String,
    /// `#RRGGBB`, default `#1677FF`.
    #[validate(custom(function = "valid_color"))]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    pub color: Option<String>,
    /// What the tag means and when to use it.
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub definition: Option<String>,
    #[serde(default)]
    pub sort_order: i32,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "tag_change_not_empty"))]
#[schema(example = json!({"status": "archived"}))]
pub struct UpdateTagRequest {
    #[validate(custom(function = "unique_name"))]
    #[schema(min_length = 1, max_length = 32)]
    pub name: Option<String>,
    #[validate(custom(function = "valid_color"))]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    pub color: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub definition: Option<String>,
    pub sort_order: Option<i32>,
    /// Archived tags stay on customers but cannot be newly assigned.
    pub status: Option<TagStatusView>,
}

fn tag_change_not_empty(r: &UpdateTagRequest) -> Result<(), ValidationError> {
    not_empty(
        r.name.is_some()
            || r.color.is_some()
            || r.definition.is_some()
            || r.sort_order.is_some()
            || r.status.is_some(),
    )
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GroupListQuery {
    /// Include archived groups and archived tags.
    #[serde(default)]
    pub include_archived: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusQuery {
    Active,
    Archived,
    All,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TagListQuery {
    /// Only the tags of this group.
    #[validate(range(min = 1))]
    #[param(minimum = 1)]
    pub group_id: Option<i64>,
    /// `active` (default), `archived` or `all`.
    #[param(inline)]
    pub status: Option<StatusQuery>,
}

fn library<'a>(state: &'a AppState, caller: &StaffCaller) -> TagLibrary<'a> {
    TagLibrary::new(&state.db, &caller.actor())
}

async fn groups_with_tags(
    state: &AppState,
    caller: &StaffCaller,
    include_archived: bool,
    only: Option<TagGroupId>,
) -> Result<Vec<TagGroupView>, ApiError> {
    let lib = library(state, caller);
    let status = if include_archived {
        StatusFilter::All
    } else {
        StatusFilter::Active
    };
    let counts = app::search::tag_counts(state, &caller.actor()).await?;
    let tags = lib.tags_counted(only, status, counts).await?;
    let groups = match only {
        Some(id) => vec![lib.group(id).await?],
        None => lib.groups(include_archived).await?,
    };
    Ok(groups
        .into_iter()
        .map(|g| {
            let mine = tags
                .iter()
                .filter(|t| t.group_id == g.id)
                .cloned()
                .map(TagView::from)
                .collect();
            TagGroupView::new(g, Some(mine))
        })
        .collect())
}

/// Create a tag group (main tag). Admins and managers.
#[utoipa::path(
    tag = "tags",
    security(("bearer" = [])),
    request_body = CreateTagGroupRequest,
    responses(
        (status = 201, description = "The new group", body = TagGroupView),
        (status = 403, description = "Not an admin or manager", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A group with the same normalised name exists (`tag_group_name_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/tag-groups")]
pub async fn create_group(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<CreateTagGroupRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::CurateTagLibrary)?;
    let r = body.into_inner()?;
    let group = library(&state, &caller)
        .create_group(NewTagGroup {
            name: r.name,
            dimension: r.dimension.into(),
            exclusive: r.exclusive,
            description: r.description,
            sort_order: r.sort_order,
        })
        .await?;
    Ok(HttpResponse::Created().json(TagGroupView::new(group, Some(Vec::new()))))
}

/// The tag library: every group with its tags and their customer counts.
#[utoipa::path(
    tag = "tags",
    security(("bearer" = [])),
    params(GroupListQuery),
    responses(
        (status = 200, description = "Groups in display order, each with its tags", body = TagGroupList),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/tag-groups")]
pub async fn list_groups(
    state: web::Data<AppState>,
    caller: StaffCaller,
    query: ValidQuery<GroupListQuery>,
) -> Result<HttpResponse, ApiError> {
    let items =
        groups_with_tags(&state, &caller, query.into_inner()?.include_archived, None).await?;
    Ok(HttpResponse::Ok().json(TagGroupList { items }))
}

/// One tag group with its tags (archived ones included).
#[utoipa::path(
    tag = "tags",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Tag group id", example = 2)),
    responses(
        (status = 200, description = "The group", body = TagGroupView),
        (status = 404, description = "No such group in the caller's tenant", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/tag-groups/{id}")]
pub async fn get_group(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut groups =
        groups_with_tags(&state, &caller, true, Some(TagGroupId(id.into_inner()))).await?;
    let group = groups
        .pop()
        .ok_or_else(|| ApiError::not_found("tag group"))?;
    Ok(HttpResponse::Ok().json(group))
}

/// Rename, reorder, describe, make exclusive, or archive a tag group. Admins and managers.
#[utoipa::path(
    tag = "tags",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Tag group id", example = 2)),
    request_body = UpdateTagGroupRequest,
    responses(
        (status = 200, description = "The updated group", body = TagGroupView),
        (status = 403, description = "Not an admin or manager", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The new name is taken (`tag_group_name_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or no fields", body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/tag-groups/{id}")]
pub async fn update_group(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    body: ValidJson<UpdateTagGroupRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::CurateTagLibrary)?;
    let r = body.into_inner()?;
    let group = library(&state, &caller)
        .update_group(
            TagGroupId(id.into_inner()),
            TagGroupChange {
                name: r.name,
                description: r.description,
                sort_order: r.sort_order,
                exclusive: r.exclusive,
                archived: r.archived,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(TagGroupView::new(group, None)))
}

/// Create a tag (sub tag) in a group. Admins and managers.
#[utoipa::path(
    tag = "tags",
    security(("bearer" = [])),
    request_body = CreateTagRequest,
    responses(
        (status = 201, description = "The new tag", body = TagView),
        (status = 403, description = "Not an admin or manager", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A tag with the same normalised name exists (`tag_name_taken`); the detail names it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, unknown or archived group", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/tags")]
pub async fn create_tag(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<CreateTagRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::CurateTagLibrary)?;
    let r = body.into_inner()?;
    let tag = library(&state, &caller)
        .create_tag(NewTag {
            group_id: TagGroupId(r.group_id),
            name: r.name,
            color: r.color,
            definition: r.definition,
            sort_order: r.sort_order,
        })
        .await?;
    Ok(HttpResponse::Created().json(TagView::from(tag)))
}

/// Tags with their customer counts, in display order.
#[utoipa::path(
    tag = "tags",
    security(("bearer" = [])),
    params(TagListQuery),
    responses(
        (status = 200, description = "The tags", body = TagList),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/tags")]
pub async fn list_tags(
    state: web::Data<AppState>,
    caller: StaffCaller,
    query: ValidQuery<TagListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner()?;
    let status = match q.status.unwrap_or(StatusQuery::Active) {
        StatusQuery::Active => StatusFilter::Active,
        StatusQuery::Archived => StatusFilter::Archived,
        StatusQuery::All => StatusFilter::All,
    };
    let counts = app::search::tag_counts(&state, &caller.actor()).await?;
    let items = library(&state, &caller)
        .tags_counted(q.group_id.map(TagGroupId), status, counts)
        .await?
        .into_iter()
        .map(TagView::from)
        .collect();
    Ok(HttpResponse::Ok().json(TagList { items }))
}

/// One tag with its customer count.
#[utoipa::path(
    tag = "tags",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Tag id", example = 7)),
    responses(
        (status = 200, description = "The tag", body = TagView),
        (status = 404, description = "No such tag in the caller's tenant", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/tags/{id}")]
pub async fn get_tag(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tag = library(&state, &caller).tag(TagId(id.into_inner())).await?;
    Ok(HttpResponse::Ok().json(TagView::from(tag)))
}

/// Rename, recolour, redefine, reorder or archive a tag. Admins and managers.
#[utoipa::path(
    tag = "tags",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Tag id", example = 7)),
    request_body = UpdateTagRequest,
    responses(
        (status = 200, description = "The updated tag", body = TagView),
        (status = 403, description = "Not an admin or manager", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tag in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The new name is taken (`tag_name_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or no fields", body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/tags/{id}")]
pub async fn update_tag(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    body: ValidJson<UpdateTagRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::CurateTagLibrary)?;
    let r = body.into_inner()?;
    let tag = library(&state, &caller)
        .update_tag(
            TagId(id.into_inner()),
            TagChange {
                name: r.name,
                color: r.color,
                definition: r.definition,
                sort_order: r.sort_order,
                status: r.status.map(TagStatus::from),
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(TagView::from(tag)))
}
