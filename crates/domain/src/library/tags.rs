//! The shared two-level tag library: tag groups (main tags) and tags (sub tags).
//!
//! Names are unique per tenant under their [`name_key`](crate::kernel::names::name_key), separately for
//! groups and for tags, so near-duplicates are refused with the existing record named. An
//! exclusive group allows at most one of its tags per customer. Archived tags stay on the
//! customers that carry them but cannot be assigned again.
//!
//! Over 600 lines because groups and tags are one service sharing the name rules, the audit
//! and the counts; the file reads types, then `TagLibrary`, then its private helpers.

use crate::kernel::clock;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde::Serialize;

use crate::access::policy::{self, Action};
use crate::access::{Scope, StaffActor, Viewer};
use crate::kernel::error::{DomainError, DomainResult, ErrorCode};
use crate::kernel::ids::{TagGroupId, TagId, TenantId};
use crate::kernel::names::checked_unique_name;
pub use crate::kernel::values::{Dimension, TagStatus};
use crate::store::entities::{tag, tag_group};
use crate::support::audit::{self, Actor, AuditEntry};
use crate::support::{config_version, data_version};

/// Longest tag or group name, in characters.
pub const NAME_MAX: usize = 32;
/// Longest description or definition, in characters.
pub const TEXT_MAX: usize = 500;
/// Colour of a tag created without one.
pub const DEFAULT_COLOR: &str = "#1677FF";

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Basic => "basic",
            Dimension::Behaviour => "behaviour",
            Dimension::Value => "value",
            Dimension::Lifecycle => "lifecycle",
            Dimension::Custom => "custom",
        }
    }
}

impl FromStr for Dimension {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "basic" => Dimension::Basic,
            "behaviour" => Dimension::Behaviour,
            "value" => Dimension::Value,
            "lifecycle" => Dimension::Lifecycle,
            "custom" => Dimension::Custom,
            _ => {
                return Err(DomainError::field(
                    "dimension",
                    "invalid",
                    "unknown dimension",
                ));
            }
        })
    }
}

impl TagStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TagStatus::Active => "active",
            TagStatus::Archived => "archived",
        }
    }
}

impl fmt::Display for TagStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TagStatus {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(TagStatus::Active),
            "archived" => Ok(TagStatus::Archived),
            _ => Err(DomainError::field(
                "status",
                "invalid",
                "must be active or archived",
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TagGroup {
    pub id: TagGroupId,
    pub name: String,
    pub dimension: Dimension,
    pub exclusive: bool,
    pub description: Option<String>,
    pub sort_order: i32,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<tag_group::Model> for TagGroup {
    type Error = DomainError;

    fn try_from(m: tag_group::Model) -> Result<Self, Self::Error> {
        Ok(TagGroup {
            id: m.id,
            name: m.name,
            dimension: m.dimension,
            exclusive: m.exclusive,
            description: m.description,
            sort_order: m.sort_order,
            archived: m.archived,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tag {
    pub id: TagId,
    pub group_id: TagGroupId,
    pub group_name: String,
    pub name: String,
    pub color: String,
    pub definition: Option<String>,
    pub sort_order: i32,
    pub status: TagStatus,
    /// Live customers carrying the tag.
    pub customer_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewTagGroup {
    pub name: String,
    pub dimension: Dimension,
    pub exclusive: bool,
    pub description: Option<String>,
    pub sort_order: i32,
}

#[derive(Debug, Clone, Default)]
pub struct TagGroupChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub sort_order: Option<i32>,
    pub exclusive: Option<bool>,
    pub archived: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct NewTag {
    pub group_id: TagGroupId,
    pub name: String,
    pub color: Option<String>,
    pub definition: Option<String>,
    pub sort_order: i32,
}

#[derive(Debug, Clone, Default)]
pub struct TagChange {
    pub name: Option<String>,
    pub color: Option<String>,
    pub definition: Option<String>,
    pub sort_order: Option<i32>,
    pub status: Option<TagStatus>,
}

/// Which tags a listing includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Active,
    Archived,
    All,
}

/// Checks a `#RRGGBB` colour.
pub fn valid_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn checked_name(field: &'static str, name: &str) -> DomainResult<(String, String)> {
    Ok(checked_unique_name(field, name, NAME_MAX)?)
}

fn checked_text(field: &'static str, text: Option<String>) -> DomainResult<Option<String>> {
    let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if text.as_ref().is_some_and(|t| t.chars().count() > TEXT_MAX) {
        return Err(DomainError::field(
            field,
            "length",
            format!("must be at most {TEXT_MAX} characters"),
        ));
    }
    Ok(text)
}

/// The tag library of one tenant, as one staff member sees and changes it. Every staff member
/// reads it; changing it is [`Action::CurateTagLibrary`].
pub struct TagLibrary<'a> {
    db: &'a DatabaseConnection,
    tenant: TenantId,
    actor: StaffActor,
}

impl<'a> TagLibrary<'a> {
    pub fn new(db: &'a DatabaseConnection, actor: &StaffActor) -> Self {
        TagLibrary {
            db,
            tenant: actor.tenant,
            actor: *actor,
        }
    }

    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, staff = %self.actor.id))]
    pub async fn create_group(&self, new: NewTagGroup) -> DomainResult<TagGroup> {
        policy::permit(&self.actor, Action::CurateTagLibrary)?;
        let (name, key) = checked_name("name", &new.name)?;
        let description = checked_text("description", new.description)?;
        let txn = self.db.begin().await?;
        self.ensure_group_name_free(&txn, &key, None).await?;
        let now = clock::now();
        let model = tag_group::ActiveModel {
            tenant_id: Set(self.tenant),
            name: Set(name),
            name_key: Set(key),
            dimension: Set(new.dimension),
            exclusive: Set(new.exclusive),
            description: Set(description),
            sort_order: Set(new.sort_order),
            archived: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        self.audit(
            &txn,
            "tag_group.created",
            "tag_group",
            model.id.0,
            serde_json::json!({"name": model.name}),
        )
        .await?;
        config_version::bump(&txn, self.tenant).await?;
        data_version::bump(&txn, self.tenant).await?;
        txn.commit().await?;
        model.try_into()
    }

    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, staff = %self.actor.id))]
    pub async fn update_group(
        &self,
        id: TagGroupId,
        change: TagGroupChange,
    ) -> DomainResult<TagGroup> {
        policy::permit(&self.actor, Action::CurateTagLibrary)?;
        let txn = self.db.begin().await?;
        let current = self.group_model(&txn, id).await?;
        let mut active: tag_group::ActiveModel = current.into();
        if let Some(name) = &change.name {
            let (name, key) = checked_name("name", name)?;
            self.ensure_group_name_free(&txn, &key, Some(id)).await?;
            active.name = Set(name);
            active.name_key = Set(key);
        }
        if change.description.is_some() {
            active.description = Set(checked_text("description", change.description.clone())?);
        }
        if let Some(order) = change.sort_order {
            active.sort_order = Set(order);
        }
        if let Some(exclusive) = change.exclusive {
            if exclusive && self.group_has_customers_with_several_tags(&txn, id).await? {
                return Err(DomainError::field(
                    "exclusive",
                    "conflict",
                    "some customers carry several tags of this group; remove the extra tags first",
                ));
            }
            active.exclusive = Set(exclusive);
        }
        if let Some(archived) = change.archived {
            active.archived = Set(archived);
        }
        active.updated_at = Set(clock::now());
        let model = active.update(&txn).await?;
        self.audit(
            &txn,
            "tag_group.updated",
            "tag_group",
            model.id.0,
            serde_json::json!({
                "name": change.name, "sort_order": change.sort_order,
                "exclusive": change.exclusive, "archived": change.archived,
            }),
        )
        .await?;
        config_version::bump(&txn, self.tenant).await?;
        data_version::bump(&txn, self.tenant).await?;
        txn.commit().await?;
        model.try_into()
    }

    pub async fn group(&self, id: TagGroupId) -> DomainResult<TagGroup> {
        self.group_model(self.db, id).await?.try_into()
    }

    /// The groups, ordered for display; archived ones only when asked for.
    pub async fn groups(&self, include_archived: bool) -> DomainResult<Vec<TagGroup>> {
        let mut query =
            tag_group::Entity::find().filter(tag_group::Column::TenantId.eq(self.tenant.0));
        if !include_archived {
            query = query.filter(tag_group::Column::Archived.eq(false));
        }
        query
            .order_by_asc(tag_group::Column::SortOrder)
            .order_by_asc(tag_group::Column::Id)
            .all(self.db)
            .await?
            .into_iter()
            .map(TagGroup::try_from)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, staff = %self.actor.id))]
    pub async fn create_tag(&self, new: NewTag) -> DomainResult<Tag> {
        policy::permit(&self.actor, Action::CurateTagLibrary)?;
        let (name, key) = checked_name("name", &new.name)?;
        let definition = checked_text("definition", new.definition)?;
        let color = new
            .color
            .unwrap_or_else(|| DEFAULT_COLOR.to_owned())
            .to_uppercase();
        if !valid_color(&color) {
            return Err(DomainError::field(
                "color",
                "color",
                "must be a colour like #1677FF",
            ));
        }
        let txn = self.db.begin().await?;
        let group = tag_group::Entity::find_by_id(new.group_id)
            .filter(tag_group::Column::TenantId.eq(self.tenant.0))
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::field("group_id", "unknown_group", "no such tag group"))?;
        if group.archived {
            return Err(DomainError::field(
                "group_id",
                "archived",
                "the tag group is archived",
            ));
        }
        self.ensure_tag_name_free(&txn, &key, None).await?;
        let now = clock::now();
        let model = tag::ActiveModel {
            tenant_id: Set(self.tenant),
            group_id: Set(group.id),
            name: Set(name),
            name_key: Set(key),
            color: Set(color),
            definition: Set(definition),
            sort_order: Set(new.sort_order),
            status: Set(TagStatus::Active),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        self.audit(
            &txn,
            "tag.created",
            "tag",
            model.id.0,
            serde_json::json!({"name": model.name, "group_id": group.id}),
        )
        .await?;
        config_version::bump(&txn, self.tenant).await?;
        data_version::bump(&txn, self.tenant).await?;
        txn.commit().await?;
        let id = model.id;
        self.tag(id).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, staff = %self.actor.id))]
    pub async fn update_tag(&self, id: TagId, change: TagChange) -> DomainResult<Tag> {
        policy::permit(&self.actor, Action::CurateTagLibrary)?;
        let txn = self.db.begin().await?;
        let current = self.tag_model(&txn, id).await?;
        let mut active: tag::ActiveModel = current.into();
        if let Some(name) = &change.name {
            let (name, key) = checked_name("name", name)?;
            self.ensure_tag_name_free(&txn, &key, Some(id)).await?;
            active.name = Set(name);
            active.name_key = Set(key);
        }
        if let Some(color) = &change.color {
            let color = color.to_uppercase();
            if !valid_color(&color) {
                return Err(DomainError::field(
                    "color",
                    "color",
                    "must be a colour like #1677FF",
                ));
            }
            active.color = Set(color);
        }
        if change.definition.is_some() {
            active.definition = Set(checked_text("definition", change.definition.clone())?);
        }
        if let Some(order) = change.sort_order {
            active.sort_order = Set(order);
        }
        if let Some(status) = change.status {
            active.status = Set(status);
        }
        active.updated_at = Set(clock::now());
        active.update(&txn).await?;
        self.audit(
            &txn,
            "tag.updated",
            "tag",
            id.0,
            serde_json::json!({
                "name": change.name, "color": change.color,
                "sort_order": change.sort_order, "status": change.status,
            }),
        )
        .await?;
        config_version::bump(&txn, self.tenant).await?;
        data_version::bump(&txn, self.tenant).await?;
        txn.commit().await?;
        self.tag(id).await
    }

    pub async fn tag(&self, id: TagId) -> DomainResult<Tag> {
        let model = self.tag_model(self.db, id).await?;
        let mut tags = self.with_details(vec![model], None).await?;
        tags.pop().ok_or(DomainError::NotFound("tag"))
    }

    /// The tags, in display order (group order, then tag order), with the counts of the
    /// customers the member of staff sees carrying them.
    pub async fn tags(
        &self,
        group: Option<TagGroupId>,
        status: StatusFilter,
    ) -> DomainResult<Vec<Tag>> {
        self.tags_counted(group, status, None).await
    }

    /// [`TagLibrary::tags`], with the customer counts given (from the search index) rather
    /// than counted in SQL; a tag missing from `counts` is on no visible customer.
    pub async fn tags_counted(
        &self,
        group: Option<TagGroupId>,
        status: StatusFilter,
        counts: Option<HashMap<i64, u64>>,
    ) -> DomainResult<Vec<Tag>> {
        let mut query = tag::Entity::find().filter(tag::Column::TenantId.eq(self.tenant.0));
        if let Some(group) = group {
            query = query.filter(tag::Column::GroupId.eq(group.0));
        }
        match status {
            StatusFilter::Active => query = query.filter(tag::Column::Status.eq(TagStatus::Active)),
            StatusFilter::Archived => {
                query = query.filter(tag::Column::Status.eq(TagStatus::Archived))
            }
            StatusFilter::All => {}
        }
        let models = query
            .order_by_asc(tag::Column::SortOrder)
            .order_by_asc(tag::Column::Id)
            .all(self.db)
            .await?;
        let mut tags = self.with_details(models, counts).await?;
        let group_order: HashMap<TagGroupId, (i32, i64)> = self
            .groups(true)
            .await?
            .into_iter()
            .map(|g| (g.id, (g.sort_order, g.id.0)))
            .collect();
        tags.sort_by_key(|t| (group_order.get(&t.group_id).copied(), t.sort_order, t.id));
        Ok(tags)
    }

    /// Adds group names and customer counts to tag rows.
    async fn with_details(
        &self,
        models: Vec<tag::Model>,
        counts: Option<HashMap<i64, u64>>,
    ) -> DomainResult<Vec<Tag>> {
        if models.is_empty() {
            return Ok(Vec::new());
        }
        let counts = match counts {
            Some(counts) => counts,
            None => {
                let ids: Vec<i64> = models.iter().map(|m| m.id.0).collect();
                customer_counts(self.db, &Viewer::of(&self.actor), &ids).await?
            }
        };
        let groups: HashMap<TagGroupId, String> = tag_group::Entity::find()
            .filter(tag_group::Column::TenantId.eq(self.tenant.0))
            .all(self.db)
            .await?
            .into_iter()
            .map(|g| (g.id, g.name))
            .collect();
        models
            .into_iter()
            .map(|m| {
                Ok(Tag {
                    id: m.id,
                    group_id: m.group_id,
                    group_name: groups.get(&m.group_id).cloned().unwrap_or_default(),
                    customer_count: counts
                        .get(&m.id.0)
                        .map_or(0, |n| i64::try_from(*n).unwrap_or(i64::MAX)),
                    name: m.name,
                    color: m.color,
                    definition: m.definition,
                    sort_order: m.sort_order,
                    status: m.status,
                    created_at: m.created_at,
                    updated_at: m.updated_at,
                })
            })
            .collect()
    }

    async fn group_model<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: TagGroupId,
    ) -> DomainResult<tag_group::Model> {
        tag_group::Entity::find_by_id(id)
            .filter(tag_group::Column::TenantId.eq(self.tenant.0))
            .one(conn)
            .await?
            .ok_or(DomainError::NotFound("tag group"))
    }

    async fn tag_model<C: ConnectionTrait>(&self, conn: &C, id: TagId) -> DomainResult<tag::Model> {
        tag::Entity::find_by_id(id)
            .filter(tag::Column::TenantId.eq(self.tenant.0))
            .one(conn)
            .await?
            .ok_or(DomainError::NotFound("tag"))
    }

    async fn ensure_group_name_free<C: ConnectionTrait>(
        &self,
        conn: &C,
        key: &str,
        except: Option<TagGroupId>,
    ) -> DomainResult<()> {
        let existing = tag_group::Entity::find()
            .filter(tag_group::Column::TenantId.eq(self.tenant.0))
            .filter(tag_group::Column::NameKey.eq(key))
            .one(conn)
            .await?;
        match existing {
            Some(g) if Some(g.id) != except => Err(name_taken(
                ErrorCode::TagGroupNameTaken,
                "tag group",
                &g.name,
                g.id.0,
            )),
            _ => Ok(()),
        }
    }

    async fn ensure_tag_name_free<C: ConnectionTrait>(
        &self,
        conn: &C,
        key: &str,
        except: Option<TagId>,
    ) -> DomainResult<()> {
        let existing = tag::Entity::find()
            .filter(tag::Column::TenantId.eq(self.tenant.0))
            .filter(tag::Column::NameKey.eq(key))
            .one(conn)
            .await?;
        match existing {
            Some(t) if Some(t.id) != except => {
                Err(name_taken(ErrorCode::TagNameTaken, "tag", &t.name, t.id.0))
            }
            _ => Ok(()),
        }
    }

    async fn group_has_customers_with_several_tags<C: ConnectionTrait>(
        &self,
        conn: &C,
        group: TagGroupId,
    ) -> DomainResult<bool> {
        let select = Query::select()
            .expr(Expr::col((Alias::new("ct"), Alias::new("customer_id"))))
            .from_as(Alias::new("customer_tags"), Alias::new("ct"))
            .inner_join(
                Alias::new("tags"),
                Expr::col((Alias::new("tags"), Alias::new("id")))
                    .equals((Alias::new("ct"), Alias::new("tag_id"))),
            )
            .and_where(Expr::col((Alias::new("ct"), Alias::new("tenant_id"))).eq(self.tenant.0))
            .and_where(Expr::col((Alias::new("tags"), Alias::new("group_id"))).eq(group.0))
            .group_by_col((Alias::new("ct"), Alias::new("customer_id")))
            .and_having(Expr::cust("COUNT(*) > 1"))
            .limit(1)
            .to_owned();
        Ok(conn.query_one(&select).await?.is_some())
    }

    async fn audit<C: ConnectionTrait>(
        &self,
        conn: &C,
        action: &str,
        target_type: &str,
        target_id: i64,
        details: serde_json::Value,
    ) -> DomainResult<()> {
        audit::record(
            conn,
            AuditEntry {
                tenant_id: Some(self.tenant),
                actor: Actor::Staff(self.actor.id),
                action,
                target_type,
                target_id: Some(target_id.to_string()),
                details: Some(details),
            },
        )
        .await
    }
}

/// How many customers `viewer` sees carry each of `tags` (soft-deleted customers hold no
/// tags).
async fn customer_counts<C: ConnectionTrait>(
    conn: &C,
    viewer: &Viewer,
    tags: &[i64],
) -> DomainResult<HashMap<i64, u64>> {
    let owner = match viewer.scope {
        Scope::Tenant => None,
        Scope::Own(staff) => Some(staff),
        Scope::Nothing => return Ok(HashMap::new()),
    };
    let mut select = Query::select()
        .column((Alias::new("ct"), Alias::new("tag_id")))
        .expr(Expr::cust("COUNT(*)"))
        .from_as(Alias::new("customer_tags"), Alias::new("ct"))
        .and_where(Expr::col((Alias::new("ct"), Alias::new("tenant_id"))).eq(viewer.tenant.0))
        .and_where(Expr::col((Alias::new("ct"), Alias::new("tag_id"))).is_in(tags.iter().copied()))
        .group_by_col((Alias::new("ct"), Alias::new("tag_id")))
        .to_owned();
    if let Some(owner) = owner {
        select.inner_join(
            Alias::new("customers"),
            Expr::col((Alias::new("customers"), Alias::new("id")))
                .equals((Alias::new("ct"), Alias::new("customer_id")))
                .and(Expr::col((Alias::new("customers"), Alias::new("owner_id"))).eq(owner.0)),
        );
    }
    let rows = conn.query_all(&select).await?;
    let mut counts = HashMap::new();
    for row in rows {
        let tag: i64 = row.try_get_by_index(0)?;
        let count: i64 = row.try_get_by_index(1)?;
        counts.insert(tag, u64::try_from(count).unwrap_or(0));
    }
    Ok(counts)
}

/// The 409 for a name already held, naming the record that holds it.
fn name_taken(code: ErrorCode, what: &str, name: &str, id: i64) -> DomainError {
    DomainError::Taken {
        code,
        detail: format!("the {what} \"{name}\" (id {id}) already has this name"),
        existing_id: Some(id),
    }
}
