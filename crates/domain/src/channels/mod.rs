//! Capture channels (渠道码): a scene printed on a mini-program code, with the form a visitor
//! fills in, the tags the customer gets, and who becomes the owner.
//!
//! The code carries the *qualified* scene `{tenant_id}.{scene}`: one mini-program serves every
//! tenant, and WeChat hands the page nothing but the scene. WeChat allows 32 characters, so a
//! channel's own scene may use what the tenant prefix leaves.
//!
//! Over 600 lines because `Channels` (create, update, read with statistics) is one service;
//! its checks are in `config`, the visitor's side in `public`.

use crate::kernel::clock;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::access::StaffActor;
use crate::access::policy::{self, Action};
use crate::customers::Customers;
use crate::kernel::error::{DomainError, DomainResult, ErrorCode, FieldIssue};
use crate::kernel::ids::{ChannelId, StaffId, TagGroupId, TagId, TenantId};
use crate::kernel::names::{checked_name, display_name};
use crate::library::custom_fields::{self, CustomFieldDef, FieldType};
use crate::store::entities::{capture, channel, channel_owner_turn, staff, tag, tag_group, tenant};
use crate::support::audit::{self, Actor, AuditEntry};

mod config;
mod public;

pub use crate::kernel::values::{FormField, OwnerPolicy};
use crate::kernel::values::{FormFields, Outcome, TagIds};
use config::{Config, text_issue};
pub use public::capture_form;
#[cfg(test)]
use public::parse_qr_scene;
use public::view_field;
pub(crate) use public::{OpenChannel, open};

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

fn scene_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || SCENE_PUNCTUATION.contains(c)
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

/// Channel management for one tenant's staff: every staff member reads channels; creating
/// and changing them is [`Action::ManageChannels`].
pub struct Channels<'a> {
    db: &'a DatabaseConnection,
    tenant: TenantId,
    actor: StaffActor,
}

impl<'a> Channels<'a> {
    pub fn new(db: &'a DatabaseConnection, actor: &StaffActor) -> Self {
        Channels {
            db,
            tenant: actor.tenant,
            actor: *actor,
        }
    }

    /// Long because it checks every part of the channel in the order a client sees the errors.
    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, staff = %self.actor.id))]
    pub async fn create(&self, new: NewChannel) -> DomainResult<Channel> {
        policy::permit(&self.actor, Action::ManageChannels)?;
        let actor = self.actor.id;
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
                code: ErrorCode::ValidationFailed,
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
                code: ErrorCode::SceneTaken,
                detail: format!(
                    "the channel \"{}\" (id {}) already uses this scene",
                    other.name, other.id
                ),
                existing_id: Some(other.id.0),
            });
        }
        let now = clock::now();
        let model = channel::ActiveModel {
            tenant_id: Set(self.tenant),
            name: Set(display_name(&new.name)),
            scene: Set(new.scene.clone()),
            default_tag_ids: Set(TagIds(dedup(&new.default_tag_ids))),
            owner_policy: Set(new.owner_policy.clone()),
            form: Set(FormFields(new.form.clone())),
            privacy_policy_version: Set(new.privacy_policy_version.trim().to_owned()),
            privacy_policy_url: Set(new.privacy_policy_url.map(|u| u.trim().to_owned())),
            starts_at: Set(new.starts_at),
            ends_at: Set(new.ends_at),
            active: Set(new.active),
            scans: Set(0),
            created_by: Set(Some(actor)),
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
        self.audit(&txn, actor, "channel.created", model.id.0)
            .await?;
        txn.commit().await?;
        self.get(model.id).await
    }

    /// Long because it merges the patch into the channel field by field before checking it whole.
    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, staff = %self.actor.id))]
    pub async fn update(&self, id: ChannelId, patch: ChannelPatch) -> DomainResult<Channel> {
        policy::permit(&self.actor, Action::ManageChannels)?;
        let actor = self.actor.id;
        let txn = self.db.begin().await?;
        let current = channel::Entity::find_by_id(id)
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
            .unwrap_or_else(|| current.default_tag_ids.0.clone());
        let policy = patch
            .owner_policy
            .clone()
            .unwrap_or_else(|| current.owner_policy.clone());
        let form = patch.form.clone().unwrap_or_else(|| current.form.0.clone());
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
                code: ErrorCode::ValidationFailed,
                issues,
            });
        }
        let mut active: channel::ActiveModel = current.clone().into();
        if let Some(name) = patch.name {
            active.name = Set(display_name(&name));
        }
        active.default_tag_ids = Set(TagIds(dedup(&tags)));
        if patch.owner_policy.is_some() && policy != current.owner_policy {
            // A new list starts its turns from its first member.
            channel_owner_turn::Entity::update_many()
                .col_expr(channel_owner_turn::Column::Taken, Expr::value(0))
                .filter(channel_owner_turn::Column::ChannelId.eq(id.0))
                .exec(&txn)
                .await?;
        }
        active.owner_policy = Set(policy);
        active.form = Set(FormFields(form));
        active.privacy_policy_version = Set(version.trim().to_owned());
        active.privacy_policy_url = Set(url.map(|u| u.trim().to_owned()));
        active.starts_at = Set(starts_at);
        active.ends_at = Set(ends_at);
        if let Some(on) = patch.active {
            active.active = Set(on);
        }
        active.updated_at = Set(clock::now());
        active.update(&txn).await?;
        self.audit(&txn, actor, "channel.updated", id.0).await?;
        txn.commit().await?;
        self.get(id).await
    }

    pub async fn get(&self, id: ChannelId) -> DomainResult<Channel> {
        let model = channel::Entity::find_by_id(id)
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

    /// The qualified scene of a channel, for its mini-program code.
    pub async fn qr_scene(&self, id: ChannelId) -> DomainResult<String> {
        let model = channel::Entity::find_by_id(id)
            .filter(channel::Column::TenantId.eq(self.tenant.0))
            .one(self.db)
            .await?
            .ok_or(DomainError::NotFound("channel"))?;
        Ok(qr_scene(self.tenant, &model.scene))
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
                let tag_ids: Vec<TagId> = m.default_tag_ids.0.clone();
                let form: Vec<FormField> = m.form.0.clone();
                Channel {
                    id: m.id,
                    qr_scene: qr_scene(self.tenant, &m.scene),
                    default_tags: tag_ids
                        .iter()
                        .filter_map(|t| tags.get(t).cloned())
                        .collect(),
                    owner_policy: m.owner_policy.clone(),
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
                        ..stats.remove(&m.id.0).unwrap_or_default()
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
        let rows: Vec<(i64, Outcome, i64)> = capture::Entity::find()
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
            if outcome == Outcome::Created {
                entry.new_customers += n;
            } else {
                entry.merged += n;
            }
        }
        Ok(out)
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

fn dedup(ids: &[TagId]) -> Vec<TagId> {
    let mut out: Vec<TagId> = Vec::new();
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}

/// Display information of every tag of the tenant.
async fn tag_infos<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> DomainResult<HashMap<TagId, ChannelTag>> {
    let groups: HashMap<TagGroupId, String> = tag_group::Entity::find()
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
                t.id,
                ChannelTag {
                    id: t.id,
                    group_id: t.group_id,
                    group_name: groups.get(&t.group_id).cloned().unwrap_or_default(),
                    name: t.name,
                    color: t.color,
                },
            )
        })
        .collect())
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
