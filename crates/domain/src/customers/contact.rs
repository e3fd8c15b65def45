//! The one writer of a customer's contact fields — `phone`, `openid`, `unionid` — and of the
//! phone's lookup key `phone_index` (the number while the customer is live, NULL once it is
//! deleted, so that the unique index frees it), and the one place customers are looked up by
//! them (a search keyword's phone-suffix match, `PhoneNumber::suffix_pattern`, is the one read
//! that stays with the search). Protecting personal data at rest (an encrypted phone with a blind index) changes this
//! file and its callers' types only.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};

use crate::kernel::error::{DomainResult, Step};
use crate::kernel::ids::TenantId;
use crate::kernel::phone::PhoneNumber;
use crate::store::entities::customer;

/// The WeChat identities a visitor brings to a customer record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WeChatIdentity<'a> {
    pub(crate) openid: &'a str,
    pub(crate) unionid: Option<&'a str>,
}

/// Sets (or clears) the phone and its lookup key.
pub(crate) fn set_phone(row: &mut customer::ActiveModel, phone: Option<&PhoneNumber>) {
    let value = phone.map(|p| p.as_str().to_owned());
    row.phone = Set(value.clone());
    row.phone_index = Set(value);
}

pub(crate) fn set_openid(row: &mut customer::ActiveModel, openid: &str) {
    row.openid = Set(Some(openid.to_owned()));
}

pub(crate) fn set_unionid(row: &mut customer::ActiveModel, unionid: Option<&str>) {
    row.unionid = Set(unionid.map(str::to_owned));
}

/// A deleted customer lets go of its identities: the number and the WeChat ids may then belong
/// to a new record. The phone itself stays on the deleted row for the audit trail.
pub(crate) fn release(row: &mut customer::ActiveModel) {
    row.phone_index = Set(None);
    row.openid = Set(None);
    row.unionid = Set(None);
}

/// The live customer of `tenant` holding `phone`, if any.
pub(crate) async fn holder_of_phone<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    phone: &PhoneNumber,
) -> DomainResult<Option<i64>> {
    customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::PhoneIndex.eq(phone.as_str()))
        .into_tuple::<i64>()
        .one(conn)
        .await
        .step("looking up the holder of a phone number")
}

/// The live customers of `tenant` holding any of these identities (one `OR` over three unique
/// indexes), read without a lock.
pub(crate) async fn holders<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    wechat: WeChatIdentity<'_>,
    phone: Option<&PhoneNumber>,
) -> DomainResult<Vec<customer::Model>> {
    let mut any = Condition::any().add(customer::Column::Openid.eq(wechat.openid));
    if let Some(unionid) = wechat.unionid {
        any = any.add(customer::Column::Unionid.eq(unionid));
    }
    if let Some(phone) = phone {
        any = any.add(customer::Column::PhoneIndex.eq(phone.as_str()));
    }
    customer::Entity::find()
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::DeletedAt.is_null())
        .filter(any)
        .all(conn)
        .await
        .step("looking up customers by WeChat identity and phone")
}

/// Whether `row` holds `phone` as its lookup key.
pub(crate) fn holds_phone(row: &customer::Model, phone: &PhoneNumber) -> bool {
    row.phone_index.as_deref() == Some(phone.as_str())
}

/// Whether the customer record is the visitor's own: it carries the visitor's openid, or the
/// unionid the visitor shares with it.
pub(crate) fn is_visitors(row: &customer::Model, openid: &str, unionid: Option<&str>) -> bool {
    row.openid.as_deref() == Some(openid)
        || unionid.is_some_and(|u| row.unionid.as_deref() == Some(u))
}
