//! Capture channels (渠道码) and their mini-program codes.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use scantag_auth::wechat::EnvVersion;
use scantag_domain::channels::{
    Channel, ChannelPatch, ChannelStats, ChannelTag, Channels, FormField, NewChannel, OwnerPolicy,
};
use scantag_domain::{ChannelId, StaffId, TagId};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::app;
use crate::error::{ApiError, Problem};
use crate::extract::{StaffCaller, ValidJson, ValidQuery};
use crate::routes::customers::nullable;
use crate::state::AppState;
use scantag_domain::access::policy::Action;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Who becomes the owner of a customer captured through the channel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OwnerPolicyView {
    /// Always this staff member.
    Fixed { staff_id: i64 },
    /// Each new customer goes to the next active member of the list, in turn.
    RoundRobin { staff_ids: Vec<i64> },
    /// Nobody: the customer waits in the unassigned pool.
    Pool,
}

impl From<OwnerPolicyView> for OwnerPolicy {
    fn from(p: OwnerPolicyView) -> Self {
        match p {
            OwnerPolicyView::Fixed { staff_id } => OwnerPolicy::Fixed {
                staff_id: StaffId(staff_id),
            },
            OwnerPolicyView::RoundRobin { staff_ids } => OwnerPolicy::RoundRobin {
                staff_ids: staff_ids.into_iter().map(StaffId).collect(),
            },
            OwnerPolicyView::Pool => OwnerPolicy::Pool,
        }
    }
}

impl From<OwnerPolicy> for OwnerPolicyView {
    fn from(p: OwnerPolicy) -> Self {
        match p {
            OwnerPolicy::Fixed { staff_id } => OwnerPolicyView::Fixed {
                staff_id: staff_id.0,
            },
            OwnerPolicy::RoundRobin { staff_ids } => OwnerPolicyView::RoundRobin {
                staff_ids: staff_ids.into_iter().map(|s| s.0).collect(),
            },
            OwnerPolicy::Pool => OwnerPolicyView::Pool,
        }
    }
}

/// A field of the capture form.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "phone", "required": true, "label": "手机号"}))]
pub struct FormFieldSpec {
    /// `name`, `phone`, `company`, `industry`, `region`, or `custom_fields.<key>` of a custom
    /// field. `name` is always on the form and required.
    pub key: String,
    #[serde(default)]
    pub required: bool,
    /// The label to show; defaults to the field's own.
    pub label: Option<String>,
}

impl From<FormFieldSpec> for FormField {
    fn from(f: FormFieldSpec) -> Self {
        FormField {
            key: f.key,
            required: f.required,
            label: f.label,
        }
    }
}

impl From<FormField> for FormFieldSpec {
    fn from(f: FormField) -> Self {
        FormFieldSpec {
            key: f.key,
            required: f.required,
            label: f.label,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelTagView {
    pub id: i64,
    pub name: String,
    pub color: String,
    pub group_id: i64,
    pub group_name: String,
}

impl From<ChannelTag> for ChannelTagView {
    fn from(t: ChannelTag) -> Self {
        ChannelTagView {
            id: t.id.0,
            name: t.name,
            color: t.color,
            group_id: t.group_id.0,
            group_name: t.group_name,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelStatsView {
    /// Times the capture form was opened.
    pub scans: i64,
    /// Accepted capture forms.
    pub captures: i64,
    /// Captures that recorded a new customer.
    pub new_customers: i64,
    /// Captures merged into a customer already on record.
    pub merged: i64,
}

impl From<ChannelStats> for ChannelStatsView {
    fn from(s: ChannelStats) -> Self {
        ChannelStatsView {
            scans: s.scans,
            captures: s.captures,
            new_customers: s.new_customers,
            merged: s.merged,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 5, "name": "2026 上海车展展台", "scene": "expo2026", "qr_scene": "3.expo2026",
    "default_tags": [{"id": 11, "name": "车展", "color": "#1677FF", "group_id": 2, "group_name": "来源渠道"}],
    "owner_policy": {"type": "round_robin", "staff_ids": [12, 14]},
    "form": [{"key": "name", "required": true, "label": "姓名"}, {"key": "phone", "required": true, "label": "手机号"}],
    "privacy_policy_version": "2026-10", "privacy_policy_url": "https://example.com/privacy",
    "starts_at": "2026-11-20T00:00:00Z", "ends_at": "2026-11-30T00:00:00Z", "active": true,
    "stats": {"scans": 120, "captures": 85, "new_customers": 70, "merged": 15},
    "created_at": "2026-11-01T08:00:00Z", "updated_at": "2026-11-01T08:00:00Z"
}))]
pub struct ChannelView {
    pub id: i64,
    pub name: String,
    /// The channel's scene, unique in the tenant.
    pub scene: String,
    /// The scene on the mini-program code: `{tenant_id}.{scene}`.
    pub qr_scene: String,
    /// Tags every customer captured here gets (source `channel`).
    pub default_tags: Vec<ChannelTagView>,
    pub owner_policy: OwnerPolicyView,
    /// The form as shown, `name` first, each field with its label.
    pub form: Vec<FormFieldSpec>,
    /// The privacy policy version a visitor must accept.
    pub privacy_policy_version: String,
    pub privacy_policy_url: Option<String>,
    /// Captures are taken from this time on (always, when absent).
    pub starts_at: Option<DateTime<Utc>>,
    /// Captures are refused from this time on (never, when absent).
    pub ends_at: Option<DateTime<Utc>>,
    /// `false` pauses the channel.
    pub active: bool,
    pub stats: ChannelStatsView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Channel> for ChannelView {
    fn from(c: Channel) -> Self {
        ChannelView {
            id: c.id.0,
            name: c.name,
            scene: c.scene,
            qr_scene: c.qr_scene,
            default_tags: c.default_tags.into_iter().map(Into::into).collect(),
            owner_policy: c.owner_policy.into(),
            form: c.form.into_iter().map(Into::into).collect(),
            privacy_policy_version: c.privacy_policy_version,
            privacy_policy_url: c.privacy_policy_url,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            active: c.active,
            stats: c.stats.into(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    pub items: Vec<ChannelView>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "2026 上海车展展台", "scene": "expo2026", "default_tag_ids": [11],
    "owner_policy": {"type": "round_robin", "staff_ids": [12, 14]},
    "form": [{"key": "phone", "required": true}, {"key": "company"}, {"key": "custom_fields.budget", "label": "预算"}],
    "privacy_policy_version": "2026-10", "privacy_policy_url": "https://example.com/privacy",
    "starts_at": "2026-11-20T00:00:00Z", "ends_at": "2026-11-30T00:00:00Z"
}))]
pub struct CreateChannelRequest {
    #[validate(custom(function = "channel_name"))]
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// Letters, digits and `!#$&'()*+,/:;=?@-._~`, unique in the tenant. WeChat allows 32
    /// characters on a code, and the code carries `{tenant_id}.` before the scene, so the
    /// scene may use what that prefix leaves.
    pub scene: String,
    /// At most 20 active tags.
    #[serde(default)]
    #[validate(length(max = 20))]
    #[schema(max_items = 20)]
    pub default_tag_ids: Vec<i64>,
    /// Defaults to the unassigned pool.
    pub owner_policy: Option<OwnerPolicyView>,
    /// Fields shown besides the name (at most 30).
    #[serde(default)]
    #[validate(length(max = 30))]
    #[schema(max_items = 30)]
    pub form: Vec<FormFieldSpec>,
    #[validate(length(min = 1, max = 32))]
    #[schema(min_length = 1, max_length = 32)]
    pub privacy_policy_version: String,
    #[validate(length(min = 1, max = 512))]
    #[schema(min_length = 1, max_length = 512)]
    pub privacy_policy_url: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Defaults to `true`.
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"active": false, "ends_at": "2026-12-31T00:00:00Z"}))]
pub struct UpdateChannelRequest {
    #[validate(custom(function = "channel_name"))]
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    #[validate(length(max = 20))]
    #[schema(max_items = 20)]
    pub default_tag_ids: Option<Vec<i64>>,
    /// A change restarts the round-robin turn.
    pub owner_policy: Option<OwnerPolicyView>,
    #[validate(length(max = 30))]
    #[schema(max_items = 30)]
    pub form: Option<Vec<FormFieldSpec>>,
    #[validate(length(min = 1, max = 32))]
    #[schema(min_length = 1, max_length = 32)]
    pub privacy_policy_version: Option<String>,
    /// `null` removes the link.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub privacy_policy_url: Option<Option<String>>,
    /// `null` removes the start.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>, nullable)]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    /// `null` removes the end.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>, nullable)]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    pub active: Option<bool>,
}

/// A channel name judged here as the domain will judge it, so that its errors come together
/// with those of the other fields.
fn channel_name(name: &str) -> Result<(), validator::ValidationError> {
    scantag_domain::kernel::names::checked_name("name", name, scantag_domain::channels::NAME_MAX)
        .map(drop)
        .map_err(crate::extract::issue_error)
}

fn tag_ids(ids: Vec<i64>) -> Vec<TagId> {
    ids.into_iter().map(TagId).collect()
}

/// Create a capture channel. Admins and managers.
#[utoipa::path(
    tag = "channels",
    security(("bearer" = [])),
    request_body = CreateChannelRequest,
    responses(
        (status = 201, description = "The new channel", body = ChannelView),
        (status = 403, description = "Not an admin or manager (`insufficient_role`), or a visitor token (`staff_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another channel of the tenant uses the scene (`scene_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: `scene` (characters or length), `default_tag_ids[i]` (`unknown_tag`, `archived`, `exclusive`), `owner_policy.*` (`unknown_staff`), `form[i].key` (`unknown_field`, `duplicate`), `ends_at` (`range`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/channels")]
pub async fn create_channel(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<CreateChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageChannels)?;
    let r = body.into_inner()?;
    let channel = Channels::new(&state.db, &caller.actor())
        .create(NewChannel {
            name: r.name,
            scene: r.scene,
            default_tag_ids: tag_ids(r.default_tag_ids),
            owner_policy: r.owner_policy.map_or(OwnerPolicy::Pool, Into::into),
            form: r.form.into_iter().map(Into::into).collect(),
            privacy_policy_version: r.privacy_policy_version,
            privacy_policy_url: r.privacy_policy_url,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            active: r.active.unwrap_or(true),
        })
        .await?;
    Ok(HttpResponse::Created().json(ChannelView::from(channel)))
}

/// The tenant's capture channels with their statistics, newest first. Any staff member.
#[utoipa::path(
    tag = "channels",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The channels", body = ChannelList),
        (status = 403, description = "A visitor token (`staff_only`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/channels")]
pub async fn list_channels(
    state: web::Data<AppState>,
    caller: StaffCaller,
) -> Result<HttpResponse, ApiError> {
    let items = Channels::new(&state.db, &caller.actor())
        .list()
        .await?
        .into_iter()
        .map(ChannelView::from)
        .collect();
    Ok(HttpResponse::Ok().json(ChannelList { items }))
}

/// One capture channel with its statistics. Any staff member.
#[utoipa::path(
    tag = "channels",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Channel id", example = 5)),
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 403, description = "A visitor token (`staff_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such channel in the tenant", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/channels/{id}")]
pub async fn get_channel(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let channel = Channels::new(&state.db, &caller.actor())
        .get(ChannelId(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(ChannelView::from(channel)))
}

/// Change a capture channel; the scene is fixed once codes are printed. Admins and managers.
#[utoipa::path(
    tag = "channels",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Channel id", example = 5)),
    request_body = UpdateChannelRequest,
    responses(
        (status = 200, description = "The changed channel", body = ChannelView),
        (status = 403, description = "Not an admin or manager, or a visitor token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such channel in the tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, as on create", body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/channels/{id}")]
pub async fn update_channel(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    body: ValidJson<UpdateChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::ManageChannels)?;
    let r = body.into_inner()?;
    let channel = Channels::new(&state.db, &caller.actor())
        .update(
            ChannelId(id.into_inner()),
            ChannelPatch {
                name: r.name,
                default_tag_ids: r.default_tag_ids.map(tag_ids),
                owner_policy: r.owner_policy.map(Into::into),
                form: r
                    .form
                    .map(|form| form.into_iter().map(Into::into).collect()),
                privacy_policy_version: r.privacy_policy_version,
                privacy_policy_url: r.privacy_policy_url,
                starts_at: r.starts_at,
                ends_at: r.ends_at,
                active: r.active,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ChannelView::from(channel)))
}

/// The schema of a PNG answer: raw bytes, which the handler writes itself.
pub struct PngImage;

impl utoipa::PartialSchema for PngImage {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("A PNG image"))
            .into()
    }
}

impl ToSchema for PngImage {}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnvVersionView {
    Release,
    Trial,
    Develop,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QrCodeQuery {
    /// Width in pixels, 280–1280 (default 430).
    #[validate(range(min = 280, max = 1280))]
    #[param(minimum = 280, maximum = 1280)]
    #[param(example = 430)]
    pub width: Option<u32>,
    /// Which version of the mini-program the code opens (default `release`).
    #[param(inline)]
    pub env_version: Option<EnvVersionView>,
}

/// The channel's mini-program code (PNG).
///
/// Rendered by WeChat (`getwxacodeunlimit`) with the scene `qr_scene` and the capture page,
/// then cached: `X-Cache` says whether this answer came from the cache. Any staff member.
#[utoipa::path(
    tag = "channels",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Channel id", example = 5), QrCodeQuery),
    responses(
        (status = 200, description = "The code as a PNG image", content_type = "image/png", body = PngImage,
            headers(("X-Cache" = String, description = "`hit` when the image came from the cache, `miss` when WeChat rendered it"))),
        (status = 403, description = "A visitor token (`staff_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such channel in the tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `width` or `env_version`, or WeChat refused the parameters (`wechat_invalid_argument`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "WeChat rate-limits the mini-program (`wechat_rate_limited`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "WeChat is unreachable or busy (`wechat_unavailable`); see Retry-After", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/channels/{id}/qrcode")]
pub async fn channel_qrcode(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
    query: ValidQuery<QrCodeQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner()?;
    let env = match query.env_version.unwrap_or(EnvVersionView::Release) {
        EnvVersionView::Release => EnvVersion::Release,
        EnvVersionView::Trial => EnvVersion::Trial,
        EnvVersionView::Develop => EnvVersion::Develop,
    };
    let code = app::qrcode::channel_code(
        &state,
        &caller.actor(),
        ChannelId(id.into_inner()),
        query.width.unwrap_or(430),
        env,
    )
    .await?;
    let (png, cache) = (code.png, code.cache.as_str());
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "image/png"))
        .insert_header((CACHE_CONTROL, "private, max-age=86400"))
        .insert_header((X_CACHE, cache))
        .body(png))
}
