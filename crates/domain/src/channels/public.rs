//! The visitor's side of a channel: resolving a scanned scene to a channel open for captures,
//! and the public form it shows.

use super::*;
use crate::kernel::clock;

/// Splits a qualified scene into tenant and channel scene.
pub(super) fn parse_qr_scene(qualified: &str) -> Option<(TenantId, &str)> {
    let (tenant, scene) = qualified.split_once('.')?;
    if !tenant.bytes().all(|b| b.is_ascii_digit()) || scene.is_empty() {
        return None;
    }
    let tenant: i64 = tenant.parse().ok().filter(|t| *t > 0)?;
    Some((TenantId(tenant), scene))
}

pub(super) fn view_field(field: &FormField, defs: &[CustomFieldDef]) -> Option<FormFieldView> {
    let (label, field_type, max_length, options) = match form_target(&field.key, defs)? {
        FormTarget::Standard { label, kind, max } => (label.to_owned(), kind, Some(max), None),
        FormTarget::Custom(def) => (
            def.label.clone(),
            def.field_type.into(),
            (def.field_type == FieldType::Text).then_some(custom_fields::TEXT_VALUE_MAX),
            (!def.options.is_empty()).then(|| def.options.clone()),
        ),
    };
    Some(FormFieldView {
        key: field.key.clone(),
        label: field.label.clone().unwrap_or(label),
        field_type,
        required: field.required,
        max_length,
        options,
    })
}

/// A channel open for captures, with its parsed configuration.
#[derive(Debug, Clone)]
pub(crate) struct OpenChannel {
    pub model: channel::Model,
    pub tenant: TenantId,
    pub default_tag_ids: Vec<TagId>,
    pub owner_policy: OwnerPolicy,
    pub form: Vec<FormField>,
}

impl OpenChannel {
    /// The tenant's custom field definitions when the form has custom fields or `needed` says
    /// the caller wants them anyway; none otherwise, which saves the query on plain forms.
    pub(crate) async fn custom_field_defs<C: ConnectionTrait>(
        &self,
        conn: &C,
        needed: bool,
    ) -> DomainResult<Vec<CustomFieldDef>> {
        if needed || self.form.iter().any(FormField::is_custom) {
            custom_fields::list(conn, self.tenant).await
        } else {
            Ok(Vec::new())
        }
    }
}

/// Finds the channel of a qualified scene and checks that it takes captures now: unknown
/// scenes (another tenant's included) are missing, paused or out-of-window ones are gone.
pub(crate) async fn open<C: ConnectionTrait>(
    conn: &C,
    qualified: &str,
    now: DateTime<Utc>,
) -> DomainResult<OpenChannel> {
    let (tenant, scene) = parse_qr_scene(qualified).ok_or(DomainError::NotFound("channel"))?;
    let model = channel::Entity::find()
        .filter(channel::Column::TenantId.eq(tenant.0))
        .filter(channel::Column::Scene.eq(scene))
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("channel"))?;
    let closed = |detail: &str| DomainError::Gone {
        code: ErrorCode::ChannelInactive,
        detail: detail.to_owned(),
    };
    if !model.active {
        return Err(closed("this channel is paused and takes no captures"));
    }
    if model.starts_at.is_some_and(|s| now < s) {
        return Err(closed("this channel has not opened yet"));
    }
    if model.ends_at.is_some_and(|e| now >= e) {
        return Err(closed("this channel has closed"));
    }
    Ok(OpenChannel {
        tenant,
        default_tag_ids: model.default_tag_ids.0.clone(),
        owner_policy: model.owner_policy.clone(),
        form: normalised_form(&model.form.0),
        model,
    })
}

/// The public form of a scene; counts the scan.
pub async fn capture_form(db: &DatabaseConnection, qualified: &str) -> DomainResult<CaptureForm> {
    let open = open(db, qualified, clock::now()).await?;
    let defs = open.custom_field_defs(db, false).await?;
    let tenant_name = tenant::Entity::find_by_id(open.tenant)
        .one(db)
        .await?
        .map(|t| t.name)
        .unwrap_or_default();
    channel::Entity::update_many()
        .col_expr(
            channel::Column::Scans,
            Expr::col(channel::Column::Scans).add(1),
        )
        .filter(channel::Column::Id.eq(open.model.id))
        .exec(db)
        .await?;
    Ok(CaptureForm {
        scene: qualified.to_owned(),
        fields: open
            .form
            .iter()
            .filter_map(|f| view_field(f, &defs))
            .collect(),
        channel_name: open.model.name,
        tenant_name,
        privacy_policy_version: open.model.privacy_policy_version,
        privacy_policy_url: open.model.privacy_policy_url,
        ends_at: open.model.ends_at,
    })
}
