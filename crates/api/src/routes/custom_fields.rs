//! Tenant-defined custom fields on customers.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use scantag_domain::library::custom_fields::{self, CustomFieldDef, FieldType, NewCustomField};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::error::{ApiError, Problem};
use crate::extract::{StaffCaller, ValidJson};
use crate::state::AppState;
use scantag_domain::access::policy::Action;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldTypeView {
    /// A string of up to 200 characters.
    Text,
    /// A JSON number.
    Number,
    /// `YYYY-MM-DD`.
    Date,
    /// One of `options`.
    SingleSelect,
    /// An array of `options`.
    MultiSelect,
}

impl From<FieldTypeView> for FieldType {
    fn from(t: FieldTypeView) -> Self {
        match t {
            FieldTypeView::Text => FieldType::Text,
            FieldTypeView::Number => FieldType::Number,
            FieldTypeView::Date => FieldType::Date,
            FieldTypeView::SingleSelect => FieldType::SingleSelect,
            FieldTypeView::MultiSelect => FieldType::MultiSelect,
        }
    }
}

impl From<FieldType> for FieldTypeView {
    fn from(t: FieldType) -> Self {
        match t {
            FieldType::Text => FieldTypeView::Text,
            FieldType::Number => FieldTypeView::Number,
            FieldType::Date => FieldTypeView::Date,
            FieldType::SingleSelect => FieldTypeView::SingleSelect,
            FieldType::MultiSelect => FieldTypeView::MultiSelect,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "key": "company_size", "label": "公司规模", "field_type": "single_select",
    "options": ["1-50", "51-500", "500+"], "required": false, "created_at": "2026-11-01T08:00:00Z"
}))]
pub struct CustomFieldView {
    pub id: i64,
    /// The name used in `custom_fields` objects.
    pub key: String,
    pub label: String,
    pub field_type: FieldTypeView,
    pub options: Vec<String>,
    /// Required fields must be given when a customer is created.
    pub required: bool,
    pub created_at: DateTime<Utc>,
}

impl From<CustomFieldDef> for CustomFieldView {
    fn from(d: CustomFieldDef) -> Self {
        CustomFieldView {
            id: d.id.0,
            key: d.key,
            label: d.label,
            field_type: d.field_type.into(),
            options: d.options,
            required: d.required,
            created_at: d.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomFieldList {
    pub items: Vec<CustomFieldView>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "key": "company_size", "label": "公司规模", "field_type": "single_select",
    "options": ["1-50", "51-500", "500+"], "required": false
}))]
pub struct CreateCustomFieldRequest {
    /// `[a-z][a-z0-9_]{0,31}`, unique in the tenant.
    #[validate(length(min = 1, max = 32))]
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z][a-z0-9_]{0,31}$")]
    pub key: String,
    #[validate(length(min = 1, max = 32))]
    #[schema(min_length = 1, max_length = 32)]
    pub label: String,
    pub field_type: FieldTypeView,
    /// Required for select fields, not allowed for others.
    #[serde(default)]
    #[validate(length(max = 100))]
    #[schema(max_items = 100)]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
}

/// Define a custom customer field. Admins only.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    request_body = CreateCustomFieldRequest,
    responses(
        (status = 201, description = "The new field", body = CustomFieldView),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key is taken (`custom_field_key_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/custom-fields")]
pub async fn create_field(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<CreateCustomFieldRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.may(Action::DefineCustomFields)?;
    let r = body.into_inner()?;
    let def = custom_fields::create(
        &state.db,
        &caller.actor(),
        NewCustomField {
            key: r.key,
            label: r.label,
            field_type: r.field_type.into(),
            options: r.options,
            required: r.required,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(CustomFieldView::from(def)))
}

/// The tenant's custom customer fields.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The fields, in creation order", body = CustomFieldList)
    )
)]
#[get("/custom-fields")]
pub async fn list_fields(
    state: web::Data<AppState>,
    caller: StaffCaller,
) -> Result<HttpResponse, ApiError> {
    let items = custom_fields::list(&state.db, caller.tenant())
        .await?
        .into_iter()
        .map(CustomFieldView::from)
        .collect();
    Ok(HttpResponse::Ok().json(CustomFieldList { items }))
}
