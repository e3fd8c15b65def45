use sea_orm::entity::prelude::*;

use crate::kernel::ids::VisitorId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "visitors")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: VisitorId,
    pub openid: String,
    pub unionid: Option<String>,
    pub created_at: DateTimeUtc,
    pub last_login_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
