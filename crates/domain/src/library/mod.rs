//! The tenant's shared library: tag groups and their tags (a two-level library, groups may be
//! exclusive), and the definitions of custom customer fields.
//!
//! Owns `tag_groups`, `tags` and `custom_field_defs`. Which customers carry a tag is not the
//! library's business: that is `customers::tagging`.

pub mod custom_fields;
pub mod tags;
