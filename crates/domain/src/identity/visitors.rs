//! Visitors: WeChat users of the mini-program who are not staff. A visitor is known by the
//! openid of the mini-program; capture forms later attach what they tell us to a tenant's
//! customer record.

use crate::kernel::clock;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde::Serialize;

use crate::kernel::error::DomainResult;
use crate::kernel::ids::VisitorId;
use crate::store::entities::visitor;

#[derive(Debug, Clone, Serialize)]
pub struct Visitor {
    pub id: VisitorId,
    pub openid: String,
    pub unionid: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<visitor::Model> for Visitor {
    fn from(m: visitor::Model) -> Self {
        Visitor {
            id: m.id,
            openid: m.openid,
            unionid: m.unionid,
            created_at: m.created_at,
        }
    }
}

/// Finds the visitor with `openid`, creating it on first login, and records the login.
pub async fn upsert_on_login<C: ConnectionTrait>(
    db: &C,
    openid: &str,
    unionid: Option<&str>,
) -> DomainResult<Visitor> {
    let now = clock::now();
    if let Some(existing) = by_openid(db, openid).await? {
        let mut active: visitor::ActiveModel = existing.clone().into();
        active.last_login_at = Set(now);
        if unionid.is_some() && existing.unionid.as_deref() != unionid {
            active.unionid = Set(unionid.map(str::to_owned));
        }
        return Ok(active.update(db).await?.into());
    }
    let inserted = visitor::ActiveModel {
        openid: Set(openid.to_owned()),
        unionid: Set(unionid.map(str::to_owned)),
        created_at: Set(now),
        last_login_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await;
    match inserted {
        Ok(model) => Ok(model.into()),
        // Two first logins of the same person raced; the other one created the row.
        Err(err) => match by_openid(db, openid).await? {
            Some(model) => Ok(model.into()),
            None => Err(err.into()),
        },
    }
}

/// The visitor with `id`, if it exists.
pub async fn find<C: ConnectionTrait>(db: &C, id: VisitorId) -> DomainResult<Option<Visitor>> {
    Ok(visitor::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(Visitor::from))
}

async fn by_openid<C: ConnectionTrait>(
    db: &C,
    openid: &str,
) -> DomainResult<Option<visitor::Model>> {
    Ok(visitor::Entity::find()
        .filter(visitor::Column::Openid.eq(openid))
        .one(db)
        .await?)
}
