//! The words of tagging shared by every module that reasons about a tag on a customer: where
//! it came from, and what a history row records. Stored as short strings; a stored value this
//! code does not know is an error when read, never a guess.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a customer's tag came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum TagSource {
    #[sea_orm(string_value = "manual")]
    Manual,
    #[sea_orm(string_value = "api")]
    Api,
    #[sea_orm(string_value = "channel")]
    Channel,
    #[sea_orm(string_value = "rule")]
    Rule,
    #[sea_orm(string_value = "import")]
    Import,
}

impl TagSource {
    /// Whether the system chose the tag on its own (a channel's default tags, later rules)
    /// rather than a person or a system acting for one. Automatic choices never replace a
    /// deliberate one in an exclusive group.
    pub fn is_automatic(self) -> bool {
        matches!(self, TagSource::Channel | TagSource::Rule)
    }
}

/// What happened to a tag link.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
pub enum TagAction {
    #[sea_orm(string_value = "add")]
    Add,
    #[sea_orm(string_value = "remove")]
    Remove,
}

impl TagAction {
    pub fn as_str(self) -> &'static str {
        match self {
            TagAction::Add => "add",
            TagAction::Remove => "remove",
        }
    }
}
