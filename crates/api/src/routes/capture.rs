//! The visitor side of a channel: the public form of a scene and the capture submission.

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use scantag_domain::CustomerId;
use scantag_domain::capture::{self, CaptureRecord, CaptureResult, Conflict, MatchedBy, Outcome};
use scantag_domain::channels::{self, CaptureForm, FieldKind, FormFieldView};
use scantag_domain::support::idempotency::{self};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::rules::RuleChangeView;
use crate::app;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, StaffCaller, ValidJson, ValidQuery};
use crate::routes::customers::CustomerTagView;
use crate::state::AppState;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const REPLAYED: HeaderName = HeaderName::from_static("idempotency-replayed");

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormQuery {
    /// The scene of the mini-program code (`{tenant_id}.{scene}`), as the page received it.
    #[validate(length(min = 1, max = 64))]
    #[param(min_length = 1, max_length = 64)]
    #[param(example = "3.expo2026")]
    pub scene: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormFieldDisplay {
    /// The key to submit the value under: a top-level field, or `custom_fields.<key>` for a
    /// value inside `custom_fields`.
    pub key: String,
    pub label: String,
    /// How to ask for the value.
    #[serde(rename = "type")]
    pub field_type: FormFieldType,
    pub required: bool,
    /// Longest accepted text, in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// The choices of a select field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

/// The input a form field needs.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FormFieldType {
    /// Free text up to `max_length` characters.
    Text,
    /// A mainland China mobile number; `getPhoneNumber` may fill it (`phone_code`).
    Phone,
    /// A JSON number.
    Number,
    /// `YYYY-MM-DD`.
    Date,
    /// One of `options`.
    SingleSelect,
    /// An array of distinct `options`.
    MultiSelect,
}

impl From<FieldKind> for FormFieldType {
    fn from(kind: FieldKind) -> Self {
        match kind {
            FieldKind::Text => FormFieldType::Text,
            FieldKind::Phone => FormFieldType::Phone,
            FieldKind::Number => FormFieldType::Number,
            FieldKind::Date => FormFieldType::Date,
            FieldKind::SingleSelect => FormFieldType::SingleSelect,
            FieldKind::MultiSelect => FormFieldType::MultiSelect,
        }
    }
}

impl From<FormFieldView> for FormFieldDisplay {
    fn from(f: FormFieldView) -> Self {
        FormFieldDisplay {
            key: f.key,
            label: f.label,
            field_type: f.field_type.into(),
            required: f.required,
            max_length: f.max_length,
            options: f.options,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PrivacyPolicyView {
    /// Send back as `consent.policy_version`.
    pub version: String,
    pub url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "scene": "3.expo2026", "channel_name": "2026 上海车展展台", "tenant_name": "星河科技",
    "fields": [
        {"key": "name", "label": "姓名", "type": "text", "required": true, "max_length": 64},
        {"key": "phone", "label": "手机号", "type": "phone", "required": true, "max_length": 20},
        {"key": "custom_fields.budget", "label": "预算", "type": "number", "required": false}
    ],
    "privacy_policy": {"version": "2026-10", "url": "https://example.com/privacy"},
    "ends_at": "2026-11-30T00:00:00Z"
}))]
pub struct CaptureFormView {
    pub scene: String,
    pub channel_name: String,
    pub tenant_name: String,
    /// The fields to show, in order.
    pub fields: Vec<FormFieldDisplay>,
    pub privacy_policy: PrivacyPolicyView,
    /// When the channel stops taking captures, if it does.
    pub ends_at: Option<DateTime<Utc>>,
}

impl From<CaptureForm> for CaptureFormView {
    fn from(f: CaptureForm) -> Self {
        CaptureFormView {
            scene: f.scene,
            channel_name: f.channel_name,
            tenant_name: f.tenant_name,
            fields: f.fields.into_iter().map(Into::into).collect(),
            privacy_policy: PrivacyPolicyView {
                version: f.privacy_policy_version,
                url: f.privacy_policy_url,
            },
            ends_at: f.ends_at,
        }
    }
}

/// The capture form of a scene. No token needed; each call counts as a scan of the channel.
#[utoipa::path(
    tag = "capture",
    params(FormQuery),
    responses(
        (status = 200, description = "The form to show", body = CaptureFormView),
        (status = 404, description = "No channel has this scene", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The channel is paused or outside its active window (`channel_inactive`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`scene` is missing or too long", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/capture/form")]
pub async fn capture_form(
    state: web::Data<AppState>,
    query: ValidQuery<FormQuery>,
) -> Result<HttpResponse, ApiError> {
    let form = channels::capture_form(&state.db, &query.into_inner()?.scene).await?;
    Ok(HttpResponse::Ok().json(CaptureFormView::from(form)))
}

#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// Must be `true`: the visitor accepted the privacy policy.
    pub accepted: bool,
    /// The version the visitor was shown (`privacy_policy.version` of the form).
    #[validate(length(min = 1, max = 32))]
    #[schema(min_length = 1, max_length = 32)]
    pub policy_version: String,
}

#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "scene": "3.expo2026", "name": "李雷", "phone": "13800138000", "company": "星河科技",
    "custom_fields": {"budget": 50000},
    "consent": {"accepted": true, "policy_version": "2026-10"}
}))]
pub struct CaptureRequest {
    /// The scene of the mini-program code.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub scene: String,
    /// Always on the form; 1–64 characters.
    #[validate(length(max = 256))]
    #[schema(max_length = 256)]
    pub name: Option<String>,
    /// A mainland mobile number, if the form asks for it.
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub phone: Option<String>,
    #[validate(length(max = 512))]
    #[schema(max_length = 512)]
    pub company: Option<String>,
    #[validate(length(max = 256))]
    #[schema(max_length = 256)]
    pub industry: Option<String>,
    #[validate(length(max = 256))]
    #[schema(max_length = 256)]
    pub region: Option<String>,
    /// Values of the custom fields on the form, by key.
    #[serde(default)]
    pub custom_fields: Map<String, Value>,
    /// A `getPhoneNumber` code: the backend asks WeChat for the number, which then wins over
    /// `phone`.
    #[validate(length(min = 1, max = 128))]
    #[schema(min_length = 1, max_length = 128)]
    pub phone_code: Option<String>,
    /// The privacy policy the visitor accepted.
    #[validate(nested)]
    pub consent: ConsentRequest,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeView {
    /// A new customer was recorded.
    Created,
    /// The visitor was already a customer; the record was completed, not overwritten.
    Merged,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchedByView {
    Unionid,
    Openid,
    Phone,
}

fn outcome_view(o: Outcome) -> OutcomeView {
    match o {
        Outcome::Created => OutcomeView::Created,
        Outcome::Merged => OutcomeView::Merged,
    }
}

fn matched_view(m: MatchedBy) -> MatchedByView {
    match m {
        MatchedBy::Unionid => MatchedByView::Unionid,
        MatchedBy::Openid => MatchedByView::Openid,
        MatchedBy::Phone => MatchedByView::Phone,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerView {
    pub id: i64,
    pub display_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "capture_id": 17, "customer_id": 1024, "outcome": "created", "matched_by": null,
    "owner": {"id": 12, "display_name": "王经理"},
    "tags": [{"tag_id": 11, "name": "车展", "color": "#1677FF", "group_id": 2, "group_name": "来源渠道",
              "source": "channel", "reason": "captured through channel 2026 上海车展展台",
              "assigned_by": null, "assigned_at": "2026-11-23T02:00:00Z",
              "rule_id": null, "rule_version": null, "evidence": null},
             {"tag_id": 31, "name": "新录入", "color": "#52C41A", "group_id": 6, "group_name": "生命周期",
              "source": "rule", "reason": "rule \"新客户\" (v1): applies to every customer",
              "assigned_by": null, "assigned_at": "2026-11-23T02:00:00Z",
              "rule_id": 4, "rule_version": 1, "evidence": {"rule_id": 4, "rule_version": 1, "holds": []}}],
    "rule_changes": [{"tag_id": 31, "added": true, "rule_id": 4, "rule_name": "新客户", "rule_version": 1,
                      "reason": "rule \"新客户\" (v1): applies to every customer"}],
    "captured_at": "2026-11-23T02:00:00Z"
}))]
pub struct CaptureResultView {
    pub capture_id: i64,
    pub customer_id: i64,
    pub outcome: OutcomeView,
    /// How an existing customer was recognised: same unionid, else openid, else phone;
    /// `null` for a new customer.
    #[schema(required = true)]
    pub matched_by: Option<MatchedByView>,
    /// The customer's owner; `null` while the customer waits in the unassigned pool.
    #[schema(required = true)]
    pub owner: Option<OwnerView>,
    /// Every tag now on the customer, with its group, colour and why it is there (channel
    /// tags, and the tags rules gave: `source = rule` with the rule and its reason).
    pub tags: Vec<CustomerTagView>,
    /// What the tenant's rules changed in this capture: each tag put on (or taken off), the
    /// rule and why.
    pub rule_changes: Vec<RuleChangeView>,
    pub captured_at: DateTime<Utc>,
}

impl From<CaptureResult> for CaptureResultView {
    fn from(r: CaptureResult) -> Self {
        CaptureResultView {
            capture_id: r.capture_id.0,
            customer_id: r.customer_id.0,
            outcome: outcome_view(r.outcome),
            matched_by: r.matched_by.map(matched_view),
            owner: r.owner.map(|o| OwnerView {
                id: o.id.0,
                display_name: o.display_name,
            }),
            tags: r.tags.into_iter().map(Into::into).collect(),
            rule_changes: r.rule_changes.into_iter().map(Into::into).collect(),
            captured_at: r.captured_at,
        }
    }
}

fn result_response(result: CaptureResult, replayed: bool) -> HttpResponse {
    let status = match result.outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Merged => StatusCode::OK,
    };
    let mut response = HttpResponse::build(status);
    if replayed {
        response.insert_header((REPLAYED, "true"));
    }
    response.json(CaptureResultView::from(result))
}

/// The `Idempotency-Key` header, if sent.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if idempotency::valid_key(key) => Ok(Some(key.to_owned())),
        _ => Err(ApiError::field(
            "Idempotency-Key",
            "invalid",
            "must be 1 to 128 visible ASCII characters",
        )),
    }
}

/// Submit the capture form: the visitor is recorded as a customer of the channel's tenant.
///
/// Visitors only. The customer is found by unionid, else openid, else phone, and then
/// completed (empty fields filled; values staff entered are never overwritten, differing
/// submissions are kept on the capture), or created with an owner from the channel's policy.
/// The channel's tags are added, and the owner gets a task and a WeChat message. With an
/// `Idempotency-Key`, a repeated submission returns the first answer with
/// `Idempotency-Replayed: true`.
#[utoipa::path(
    tag = "capture",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters, unique per submission of this visitor", example = "7d0c6f6e-4a53-4b61-9c8a-2f1f0e5e9a10")),
    request_body = CaptureRequest,
    responses(
        (status = 201, description = "A new customer was recorded", body = CaptureResultView,
            headers(("Idempotency-Replayed" = String, description = "`true` when this is the stored answer of an earlier submission with the same Idempotency-Key"))),
        (status = 200, description = "The visitor was already a customer; the record was completed", body = CaptureResultView,
            headers(("Idempotency-Replayed" = String, description = "`true` when this is the stored answer of an earlier submission with the same Idempotency-Key"))),
        (status = 400, description = "The JSON is malformed (`malformed_json`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A staff token (`visitor_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No channel has this scene", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A submission with this Idempotency-Key is still running (`idempotency_in_progress`); retry", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The channel is paused or outside its active window (`channel_inactive`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`): `consent` (`required`), `consent.accepted` (`must_accept`), `consent.policy_version` (`outdated`), `phone` (`phone`), `phone_code` (`wechat_code_invalid`, `wechat_code_used`), a form field (`required`, `not_in_form`, `length`), `custom_fields.<key>` (`unknown_field`, `not_in_form`, type errors), `Idempotency-Key` (`invalid`); or the Idempotency-Key was used with another body (`idempotency_key_reused`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "WeChat is unreachable while exchanging `phone_code` (`wechat_unavailable`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/capture")]
pub async fn submit_capture(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    body: ValidJson<CaptureRequest>,
) -> Result<HttpResponse, ApiError> {
    let visitor = match caller {
        Caller::Visitor(visitor) => visitor,
        Caller::Staff(_) => {
            return Err(ApiError::forbidden(
                "visitor_only",
                "capture forms are submitted by visitors; log in without an invite",
            ));
        }
    };
    let request = body.into_inner()?;
    let key = idempotency_key(&req)?;
    let submitted = app::capture::submit(&state, &visitor, request, key).await?;
    Ok(result_response(submitted.result, submitted.replayed))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConflictView {
    /// The field, as on the form (`company`, `custom_fields.budget`, …).
    pub field: String,
    /// What the visitor submitted; the customer record kept its value.
    pub submitted: Value,
}

impl From<Conflict> for ConflictView {
    fn from(c: Conflict) -> Self {
        ConflictView {
            field: c.field,
            submitted: c.submitted,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 17, "channel_id": 5, "channel_name": "2026 上海车展展台", "outcome": "merged",
    "matched_by": "phone", "consent_policy_version": "2026-10",
    "consented_at": "2026-11-23T02:00:00Z",
    "conflicts": [{"field": "company", "submitted": "星河科技（上海）"}],
    "created_at": "2026-11-23T02:00:00Z"
}))]
pub struct CaptureRecordView {
    pub id: i64,
    pub channel_id: i64,
    pub channel_name: String,
    pub outcome: OutcomeView,
    pub matched_by: Option<MatchedByView>,
    /// The privacy policy version the visitor accepted, and when.
    pub consent_policy_version: String,
    pub consented_at: DateTime<Utc>,
    /// Submitted values that differed from the record, which kept its own.
    pub conflicts: Vec<ConflictView>,
    pub created_at: DateTime<Utc>,
}

impl From<CaptureRecord> for CaptureRecordView {
    fn from(r: CaptureRecord) -> Self {
        CaptureRecordView {
            id: r.id.0,
            channel_id: r.channel_id.0,
            channel_name: r.channel_name,
            outcome: outcome_view(r.outcome),
            matched_by: r.matched_by.map(matched_view),
            consent_policy_version: r.consent_policy_version,
            consented_at: r.consented_at,
            conflicts: r.conflicts.into_iter().map(Into::into).collect(),
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureRecordList {
    pub items: Vec<CaptureRecordView>,
}

/// The customer's visits through capture channels, newest first (at most 200).
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id", example = 1024)),
    responses(
        (status = 200, description = "The captures", body = CaptureRecordList),
        (status = 403, description = "A visitor token (`staff_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer, or not one the caller may see", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/captures")]
pub async fn customer_captures(
    state: web::Data<AppState>,
    caller: StaffCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let items = capture::customer_captures(&state.db, &caller.actor(), CustomerId(id.into_inner()))
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(CaptureRecordList { items }))
}
