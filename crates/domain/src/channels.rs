//! Capture channels (渠道码): a scene printed on a mini-program code, with the form a visitor
//! fills in, the tags the customer gets, and who becomes the owner.
//!
//! The code carries the *qualified* scene `{tenant_id}.{scene}`: one mini-program serves every
//! tenant, and WeChat hands the page nothing but the scene. WeChat allows 32 characters, so a
//! channel's own scene may use what the tenant prefix leaves.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Actor, AuditEntry};
use crate::custom_fields::{self, CustomFieldDef, FieldType};
use crate::customers::Customers;
use crate::entities::{capture, channel, channel_owner_turn, staff, tag, tag_group, tenant};
use crate::error::{DomainError, DomainResult, FieldIssue};
use crate::ids::{ChannelId, StaffId, TagGroupId, TagId, TenantId};
use crate::names::{checked_name, display_name};

/// Longest scene WeChat accepts on an unlimited mini-program code, prefix included.
pub const QR_SCENE_MAX: usize = 32;
/// Longest channel name, in characters.
pub const NAME_MAX: usize = 64;
/// Characters WeChat allows in a scene besides ASCII letters and digits.
pub const SCENE_PUNCTUATION: &str = "!#$&'()*+,/:;=?@-._~";
pub const DEFAULT_TAGS_MAX: usize = 20;
pub const FORM_FIELDS_MAX: usize = 30;
pub const ROUND_ROBIN_MAX: usize = 100;

/// The input a form field needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    /// A mainland China mobile number.
    Phone,
    Number,
    Date,
    SingleSelect,
    MultiSelect,
}

impl From<FieldType> for FieldKind {
    fn from(t: FieldType) -> Self {
        match t {
            FieldType::Text => FieldKind::Text,
            FieldType::Number => FieldKind::Number,
            FieldType::Date => FieldKind::Date,
            FieldType::SingleSelect => FieldKind::SingleSelect,
            FieldType::MultiSelect => FieldKind::MultiSelect,
        }
    }
}

/// The standard customer fields a form may show: key, label, kind, longest value.
pub(crate) const STANDARD_FIELDS: &[(&str, &str, FieldKind, usize)] = &[
    ("name", "姓名", FieldKind::Text, 64),
    ("phone", "手机号", FieldKind::Phone, 20),
    ("company", "公司", FieldKind::Text, 100),
    ("industry", "行业", FieldKind::Text, 64),
    ("region", "地区", FieldKind::Text, 64),
];
const CUSTOM_PREFIX: &str = "custom_fields.";

/// The longest value a standard field takes, in characters.
pub(crate) fn standard_field_max(key: &str) -> usize {
    STANDARD_FIELDS
        .iter()
        .find(|(k, ..)| *k == key)
        .map_or(0, |(.., max)| *max)
}

/// Who becomes the owner of a customer captured through the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OwnerPolicy {
    /// Always this staff member.
    Fixed { staff_id: StaffId },
    /// Each new customer goes to the next active member of the list, in turn.
    RoundRobin { staff_ids: Vec<StaffId> },
    /// Nobody: the customer waits in the unassigned pool.
    Pool,
}

/// One field of the capture form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormField {
    /// `name`, `phone`, `company`, `industry`, `region`, or `custom_fields.<key>`.
    pub key: String,
    #[serde(default)]
    pub required: bool,
    /// Shown instead of the field's own label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelTag {
    pub id: TagId,
    pub name: String,
    pub color: String,
    pub group_id: TagGroupId,
    pub group_name: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ChannelStats {
    /// Times the capture form was opened.
    pub scans: i64,
    pub captures: i64,
    pub new_customers: i64,
    pub merged: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    pub id: ChannelId,
    pub name: String,
    pub scene: String,
    /// The scene on the mini-program code: `{tenant_id}.{scene}`.
    pub qr_scene: String,
    pub default_tags: Vec<ChannelTag>,
    pub owner_policy: OwnerPolicy,
    /// The form as shown, `name` first, each field with its label.
    pub form: Vec<FormField>,
    pub privacy_policy_version: String,
    pub privacy_policy_url: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub stats: ChannelStats,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: String,
    pub scene: String,
    pub default_tag_ids: Vec<TagId>,
    pub owner_policy: OwnerPolicy,
    pub form: Vec<FormField>,
    pub privacy_policy_version: String,
    pub privacy_policy_url: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub active: bool,
}

/// A partial update: `None` leaves a field alone; `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub default_tag_ids: Option<Vec<TagId>>,
    pub owner_policy: Option<OwnerPolicy>,
    pub form: Option<Vec<FormField>>,
    pub privacy_policy_version: Option<String>,
    pub privacy_policy_url: Option<Option<String>>,
    pub starts_at: Option<Option<DateTime<Utc>>>,
    pub ends_at: Option<Option<DateTime<Utc>>>,
    pub active: Option<bool>,
}

/// A field of the public capture form, resolved for display.
#[derive(Debug, Clone, Serialize)]
pub struct FormFieldView {
    pub key: String,
    pub label: String,
    pub field_type: FieldKind,
    pub required: bool,
    pub max_length: Option<usize>,
    pub options: Option<Vec<String>>,
}

/// What the mini-program needs to show the capture form of a scene.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureForm {
    pub scene: String,
    pub channel_name: String,
    pub tenant_name: String,
    pub fields: Vec<FormFieldView>,
    pub privacy_policy_version: String,
    pub privacy_policy_url: Option<String>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// The scene printed on the channel's mini-program code.
pub fn qr_scene(tenant: TenantId, scene: &str) -> String {
    format!("{tenant}.{scene}")
}

/// Splits a qualified scene into tenant and channel scene.
fn parse_qr_scene(qualified: &str) -> Option<(TenantId, &str)> {
    let (tenant, scene) = qualified.split_once('.')?;
    if !tenant.bytes().all(|b| b.is_ascii_digit()) || scene.is_empty() {
        return None;
    }
    let tenant: i64 = tenant.parse().ok().filter(|t| *t > 0)?;
    Some((TenantId(tenant), scene))
}

fn scene_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || SCENE_PUNCTUATION.contains(c)
}

fn text_issue(field: &str, value: &str, max: usize, issues: &mut Vec<FieldIssue>) {
    if let Err(issue) = checked_name(field, value, max) {
        issues.push(issue);
    }
}

fn policy_staff(policy: &OwnerPolicy) -> Vec<(String, StaffId)> {
    match policy {
        OwnerPolicy::Fixed { staff_id } => vec![("owner_policy.staff_id".to_owned(), *staff_id)],
        OwnerPolicy::RoundRobin { staff_ids } => staff_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("owner_policy.staff_ids[{i}]"), *s))
            .collect(),
        OwnerPolicy::Pool => Vec::new(),
    }
}

impl FormField {
    /// Whether the field is a custom field (`custom_fields.<key>`).
    pub fn is_custom(&self) -> bool {
        self.key.starts_with(CUSTOM_PREFIX)
    }
}

/// The form as shown: `name` first and always required, then the configured fields.
fn normalised_form(form: &[FormField]) -> Vec<FormField> {
    let mut out = vec![FormField {
        key: "name".to_owned(),
        required: true,
        label: form
            .iter()
            .find(|f| f.key == "name")
            .and_then(|f| f.label.clone()),
    }];
    out.extend(form.iter().filter(|f| f.key != "name").cloned());
    out
}

/// The field a form key names: a standard field or a custom field definition.
pub(crate) enum FormTarget<'d> {
    Standard {
        label: &'static str,
        kind: FieldKind,
        max: usize,
    },
    Custom(&'d CustomFieldDef),
}

pub(crate) fn form_target<'d>(key: &str, defs: &'d [CustomFieldDef]) -> Option<FormTarget<'d>> {
    if let Some(custom) = key.strip_prefix(CUSTOM_PREFIX) {
        return defs
            .iter()
            .find(|d| d.key == custom)
            .map(FormTarget::Custom);
    }
    STANDARD_FIELDS
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, label, kind, max)| FormTarget::Standard {
            label,
            kind: *kind,
            max: *max,
        })
}

fn view_field(field: &FormField, defs: &[CustomFieldDef]) -> Option<FormFieldView> {
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

/// Channel management for one tenant's staff.
pub struct Channels<'a> {
    db: &'a DatabaseConnection,
    tenant: TenantId,
}

impl<'a> Channels<'a> {
    pub fn new(db: &'a DatabaseConnection, tenant: TenantId) -> Self {
        Channels { db, tenant }
    }

    pub async fn create(&self, actor: StaffId, new: NewChannel) -> DomainResult<Channel> {
        let mut issues = Vec::new();
        text_issue("name", &new.name, NAME_MAX, &mut issues);
        let prefix = qr_scene(self.tenant, "").chars().count();
        let scene_max = QR_SCENE_MAX - prefix;
        let scene_len = new.scene.chars().count();
        if scene_len == 0 || scene_len > scene_max {
            issues.push(FieldIssue::new(
                "scene",
                "length",
                format!(
                    "must be 1 to {scene_max} characters (the code carries \"{}\" before it, and WeChat allows {QR_SCENE_MAX})",
                    qr_scene(self.tenant, "")
                ),
            ));
        } else if !new.scene.chars().all(scene_char_ok) {
            issues.push(FieldIssue::new(
                "scene",
                "scene",
                format!("may contain only letters, digits and {SCENE_PUNCTUATION}"),
            ));
        }
        let txn = self.db.begin().await?;
        self.check_config(
            &txn,
            Config {
                default_tag_ids: &new.default_tag_ids,
                owner_policy: &new.owner_policy,
                form: &new.form,
                privacy_policy_version: &new.privacy_policy_version,
                privacy_policy_url: new.privacy_policy_url.as_deref(),
                starts_at: new.starts_at,
                ends_at: new.ends_at,
            },
            &mut issues,
        )
        .await?;
        if !issues.is_empty() {
            return Err(DomainError::Rejected {
                code: "validation_failed",
                issues,
            });
        }
        let taken = channel::Entity::find()
            .filter(channel::Column::TenantId.eq(self.tenant.0))
            .filter(channel::Column::Scene.eq(new.scene.as_str()))
            .one(&txn)
            .await?;
        if let Some(other) = taken {
            return Err(DomainError::Taken {
                code: "scene_taken",
                detail: format!(
                    "the channel \"{}\" (id {}) already uses this scene",
                    other.name, other.id
                ),
                existing_id: Some(other.id),
            });
        }
        let now = Utc::now();
        let model = channel::ActiveModel {
            tenant_id: Set(self.tenant.0),
            name: Set(display_name(&new.name)),
            scene: Set(new.scene.clone()),
            default_tag_ids: Set(json_text(&dedup(&new.default_tag_ids))),
            owner_policy: Set(json_text(&new.owner_policy)),
            form: Set(json_text(&new.form)),
            privacy_policy_version: Set(new.privacy_policy_version.trim().to_owned()),
            privacy_policy_url: Set(new.privacy_policy_url.map(|u| u.trim().to_owned())),
            starts_at: Set(new.starts_at),
            ends_at: Set(new.ends_at),
            active: Set(new.active),
            scans: Set(0),
            created_by: Set(Some(actor.0)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        channel_owner_turn::Entity::insert(channel_owner_turn::ActiveModel {
            channel_id: Set(model.id),
            tenant_id: Set(self.tenant.0),
            taken: Set(0),
        })
        .exec_without_returning(&txn)
        .await?;
        self.audit(&txn, actor, "channel.created", model.id).await?;
        txn.commit().await?;
        self.get(ChannelId(model.id)).await
    }

    pub async fn update(
        &self,
        actor: StaffId,
        id: ChannelId,
        patch: ChannelPatch,
    ) -> DomainResult<Channel> {
        let txn = self.db.begin().await?;
        let current = channel::Entity::find_by_id(id.0)
            .filter(channel::Column::TenantId.eq(self.tenant.0))
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or(DomainError::NotFound("channel"))?;
        let mut issues = Vec::new();
        if let Some(name) = &patch.name {
            text_issue("name", name, NAME_MAX, &mut issues);
        }
        let tags = patch
            .default_tag_ids
            .clone()
            .unwrap_or_else(|| parse_json(&current.default_tag_ids));
        let policy = patch
            .owner_policy
            .clone()
            .unwrap_or_else(|| parse_policy(&current.owner_policy));
        let form = patch
            .form
            .clone()
            .unwrap_or_else(|| parse_json(&current.form));
        let version = patch
            .privacy_policy_version
            .clone()
            .unwrap_or_else(|| current.privacy_policy_version.clone());
        let url = patch
            .privacy_policy_url
            .clone()
            .unwrap_or_else(|| current.privacy_policy_url.clone());
        let starts_at = patch.starts_at.unwrap_or(current.starts_at);
        let ends_at = patch.ends_at.unwrap_or(current.ends_at);
        self.check_config(
            &txn,
            Config {
                default_tag_ids: patch.default_tag_ids.as_deref().unwrap_or(&[]),
                owner_policy: &policy,
                form: &form,
                privacy_policy_version: &version,
                privacy_policy_url: url.as_deref(),
                starts_at,
                ends_at,
            },
            &mut issues,
        )
        .await?;
        if !issues.is_empty() {
            return Err(DomainError::Rejected {
                code: "validation_failed",
                issues,
            });
        }
        let mut active: channel::ActiveModel = current.clone().into();
        if let Some(name) = patch.name {
            active.name = Set(display_name(&name));
        }
        active.default_tag_ids = Set(json_text(&dedup(&tags)));
        if patch.owner_policy.is_some() && policy != parse_policy(&current.owner_policy) {
            // A new list starts its turns from its first member.
            channel_owner_turn::Entity::update_many()
                .col_expr(channel_owner_turn::Column::Taken, Expr::value(0))
                .filter(channel_owner_turn::Column::ChannelId.eq(id.0))
                .exec(&txn)
                .await?;
        }
        active.owner_policy = Set(json_text(&policy));
        active.form = Set(json_text(&form));
        active.privacy_policy_version = Set(version.trim().to_owned());
        active.privacy_policy_url = Set(url.map(|u| u.trim().to_owned()));
        active.starts_at = Set(starts_at);
        active.ends_at = Set(ends_at);
        if let Some(on) = patch.active {
            active.active = Set(on);
        }
        active.updated_at = Set(Utc::now());
        active.update(&txn).await?;
        self.audit(&txn, actor, "channel.updated", id.0).await?;
        txn.commit().await?;
        self.get(id).await
    }

    pub async fn get(&self, id: ChannelId) -> DomainResult<Channel> {
        let model = channel::Entity::find_by_id(id.0)
            .filter(channel::Column::TenantId.eq(self.tenant.0))
            .one(self.db)
            .await?
            .ok_or(DomainError::NotFound("channel"))?;
        self.views(vec![model])
            .await?
            .into_iter()
            .next()
            .ok_or(DomainError::NotFound("channel"))
    }

    /// Every channel of the tenant, newest first.
    pub async fn list(&self) -> DomainResult<Vec<Channel>> {
        let models = channel::Entity::find()
            .filter(channel::Column::TenantId.eq(self.tenant.0))
            .order_by_desc(channel::Column::Id)
            .all(self.db)
            .await?;
        self.views(models).await
    }

    async fn views(&self, models: Vec<channel::Model>) -> DomainResult<Vec<Channel>> {
        if models.is_empty() {
            return Ok(Vec::new());
        }
        let defs = custom_fields::list(self.db, self.tenant).await?;
        let tags = tag_infos(self.db, self.tenant).await?;
        let mut stats = self.stats(&models).await?;
        Ok(models
            .into_iter()
            .map(|m| {
                let tag_ids: Vec<TagId> = parse_json(&m.default_tag_ids);
                let form: Vec<FormField> = parse_json(&m.form);
                Channel {
                    id: ChannelId(m.id),
                    qr_scene: qr_scene(self.tenant, &m.scene),
                    default_tags: tag_ids
                        .iter()
                        .filter_map(|t| tags.get(t).cloned())
                        .collect(),
                    owner_policy: parse_policy(&m.owner_policy),
                    form: normalised_form(&form)
                        .into_iter()
                        .filter_map(|f| {
                            let view = view_field(&f, &defs)?;
                            Some(FormField {
                                label: Some(view.label),
                                ..f
                            })
                        })
                        .collect(),
                    stats: ChannelStats {
                        scans: m.scans,
                        ..stats.remove(&m.id).unwrap_or_default()
                    },
                    name: m.name,
                    scene: m.scene,
                    privacy_policy_version: m.privacy_policy_version,
                    privacy_policy_url: m.privacy_policy_url,
                    starts_at: m.starts_at,
                    ends_at: m.ends_at,
                    active: m.active,
                    created_at: m.created_at,
                    updated_at: m.updated_at,
                }
            })
            .collect())
    }

    /// Capture counts per channel, by outcome.
    async fn stats(&self, models: &[channel::Model]) -> DomainResult<HashMap<i64, ChannelStats>> {
        let rows: Vec<(i64, String, i64)> = capture::Entity::find()
            .select_only()
            .column(capture::Column::ChannelId)
            .column(capture::Column::Outcome)
            .column_as(Expr::col(capture::Column::Id).count(), "n")
            .filter(capture::Column::TenantId.eq(self.tenant.0))
            .filter(capture::Column::ChannelId.is_in(models.iter().map(|m| m.id)))
            .group_by(capture::Column::ChannelId)
            .group_by(capture::Column::Outcome)
            .into_tuple()
            .all(self.db)
            .await?;
        let mut out: HashMap<i64, ChannelStats> = HashMap::new();
        for (channel, outcome, n) in rows {
            let entry = out.entry(channel).or_default();
            entry.captures += n;
            if outcome == "created" {
                entry.new_customers += n;
            } else {
                entry.merged += n;
            }
        }
        Ok(out)
    }

    async fn check_config(
        &self,
        txn: &DatabaseTransaction,
        config: Config<'_>,
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<()> {
        text_issue(
            "privacy_policy_version",
            config.privacy_policy_version,
            32,
            issues,
        );
        if let Some(url) = config.privacy_policy_url {
            let url = url.trim();
            if url.chars().count() > 512
                || !(url.starts_with("https://") || url.starts_with("http://"))
            {
                issues.push(FieldIssue::new(
                    "privacy_policy_url",
                    "url",
                    "must be an http(s) URL of at most 512 characters",
                ));
            }
        }
        if let (Some(start), Some(end)) = (config.starts_at, config.ends_at)
            && end <= start
        {
            issues.push(FieldIssue::new(
                "ends_at",
                "range",
                "must be after starts_at",
            ));
        }
        self.check_tags(txn, config.default_tag_ids, issues).await?;
        self.check_policy(txn, config.owner_policy, issues).await?;
        let defs = custom_fields::list(txn, self.tenant).await?;
        if config.form.len() > FORM_FIELDS_MAX {
            issues.push(FieldIssue::new(
                "form",
                "length",
                format!("at most {FORM_FIELDS_MAX} fields"),
            ));
        }
        for (i, field) in config.form.iter().enumerate() {
            if form_target(&field.key, &defs).is_none() {
                issues.push(FieldIssue::new(
                    format!("form[{i}].key"),
                    "unknown_field",
                    "must be name, phone, company, industry, region or custom_fields.<key> of a defined custom field",
                ));
            } else if config.form[..i].iter().any(|f| f.key == field.key) {
                issues.push(FieldIssue::new(
                    format!("form[{i}].key"),
                    "duplicate",
                    "the field is already on the form",
                ));
            } else if field.key == "name" && !field.required {
                issues.push(FieldIssue::new(
                    format!("form[{i}].required"),
                    "required",
                    "the name is always required",
                ));
            }
            if let Some(label) = &field.label {
                text_issue(&format!("form[{i}].label"), label, 32, issues);
            }
        }
        Ok(())
    }

    async fn check_tags(
        &self,
        txn: &DatabaseTransaction,
        ids: &[TagId],
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<()> {
        if ids.len() > DEFAULT_TAGS_MAX {
            issues.push(FieldIssue::new(
                "default_tag_ids",
                "length",
                format!("at most {DEFAULT_TAGS_MAX} tags"),
            ));
            return Ok(());
        }
        // The same rules as tagging a customer by hand: known, active, one per exclusive group.
        Customers::system(self.db, self.tenant)
            .assignable_tags(txn, ids, "default_tag_ids", issues)
            .await?;
        Ok(())
    }

    async fn check_policy<C: ConnectionTrait>(
        &self,
        conn: &C,
        policy: &OwnerPolicy,
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<()> {
        if let OwnerPolicy::RoundRobin { staff_ids } = policy
            && (staff_ids.is_empty() || staff_ids.len() > ROUND_ROBIN_MAX)
        {
            issues.push(FieldIssue::new(
                "owner_policy.staff_ids",
                "length",
                format!("list 1 to {ROUND_ROBIN_MAX} staff members"),
            ));
            return Ok(());
        }
        let named = policy_staff(policy);
        if named.is_empty() {
            return Ok(());
        }
        let active: Vec<i64> = staff::Entity::find()
            .select_only()
            .column(staff::Column::Id)
            .filter(staff::Column::TenantId.eq(self.tenant.0))
            .filter(staff::Column::Active.eq(true))
            .filter(staff::Column::Id.is_in(named.iter().map(|(_, s)| s.0)))
            .into_tuple()
            .all(conn)
            .await?;
        for (i, (path, id)) in named.iter().enumerate() {
            if !active.contains(&id.0) {
                issues.push(FieldIssue::new(
                    path.clone(),
                    "unknown_staff",
                    "no such active staff member",
                ));
            } else if named[..i].iter().any(|(_, o)| o == id) {
                issues.push(FieldIssue::new(
                    path.clone(),
                    "duplicate",
                    "the staff member is already in the list",
                ));
            }
        }
        Ok(())
    }

    async fn audit<C: ConnectionTrait>(
        &self,
        conn: &C,
        actor: StaffId,
        action: &str,
        id: i64,
    ) -> DomainResult<()> {
        audit::record(
            conn,
            AuditEntry {
                tenant_id: Some(self.tenant),
                actor: Actor::Staff(actor),
                action,
                target_type: "channel",
                target_id: Some(id.to_string()),
                details: None,
            },
        )
        .await
    }
}

/// The settings shared by create and update, checked together.
struct Config<'c> {
    default_tag_ids: &'c [TagId],
    owner_policy: &'c OwnerPolicy,
    form: &'c [FormField],
    privacy_policy_version: &'c str,
    privacy_policy_url: Option<&'c str>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
}

fn dedup(ids: &[TagId]) -> Vec<TagId> {
    let mut out: Vec<TagId> = Vec::new();
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}

fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn parse_json<T: for<'de> Deserialize<'de> + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

fn parse_policy(text: &str) -> OwnerPolicy {
    serde_json::from_str(text).unwrap_or(OwnerPolicy::Pool)
}

/// Display information of every tag of the tenant.
async fn tag_infos<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> DomainResult<HashMap<TagId, ChannelTag>> {
    let groups: HashMap<i64, String> = tag_group::Entity::find()
        .filter(tag_group::Column::TenantId.eq(tenant.0))
        .all(conn)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    Ok(tag::Entity::find()
        .filter(tag::Column::TenantId.eq(tenant.0))
        .all(conn)
        .await?
        .into_iter()
        .map(|t| {
            (
                TagId(t.id),
                ChannelTag {
                    id: TagId(t.id),
                    group_id: TagGroupId(t.group_id),
                    group_name: groups.get(&t.group_id).cloned().unwrap_or_default(),
                    name: t.name,
                    color: t.color,
                },
            )
        })
        .collect())
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
        code: "channel_inactive",
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
        default_tag_ids: parse_json(&model.default_tag_ids),
        owner_policy: parse_policy(&model.owner_policy),
        form: normalised_form(&parse_json::<Vec<FormField>>(&model.form)),
        model,
    })
}

/// The public form of a scene; counts the scan.
pub async fn capture_form(db: &DatabaseConnection, qualified: &str) -> DomainResult<CaptureForm> {
    let open = open(db, qualified, Utc::now()).await?;
    let defs = open.custom_field_defs(db, false).await?;
    let tenant_name = tenant::Entity::find_by_id(open.tenant.0)
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

/// The qualified scene of a channel, for its mini-program code.
pub async fn channel_qr_scene(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: ChannelId,
) -> DomainResult<String> {
    let model = channel::Entity::find_by_id(id.0)
        .filter(channel::Column::TenantId.eq(tenant.0))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("channel"))?;
    Ok(qr_scene(tenant, &model.scene))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_scenes_split_at_the_first_dot() {
        assert_eq!(
            parse_qr_scene("3.expo.2026"),
            Some((TenantId(3), "expo.2026"))
        );
        assert_eq!(parse_qr_scene("3."), None);
        assert_eq!(parse_qr_scene("x.expo"), None);
        assert_eq!(parse_qr_scene("0.expo"), None);
        assert_eq!(parse_qr_scene("expo"), None);
    }

    #[test]
    fn scene_characters_are_wechats() {
        assert!("Ab9!#$&'()*+,/:;=?@-._~".chars().all(scene_char_ok));
        assert!(!"a b".chars().all(scene_char_ok));
        assert!(!"展会".chars().all(scene_char_ok));
        assert!(!"a%b".chars().all(scene_char_ok));
    }

    #[test]
    fn the_name_leads_every_form_and_is_required() {
        let form = normalised_form(&[FormField {
            key: "phone".into(),
            required: true,
            label: None,
        }]);
        assert_eq!(form[0].key, "name");
        assert!(form[0].required);
        assert_eq!(form[1].key, "phone");
    }
}
