//! The bench tenant's tag library, created over HTTP: tag groups (one or two of them exclusive)
//! and tags spread over them, with a popularity order that drives both seeding and filters.

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::json;

use crate::server::Api;

const DIMENSIONS: [&str; 5] = ["basic", "behaviour", "value", "lifecycle", "custom"];

pub struct Tag {
    pub id: i64,
    pub group: usize,
    pub exclusive: bool,
}

pub struct Library {
    /// Tags by popularity rank: index 0 is carried by the most customers.
    pub by_rank: Vec<Tag>,
    pub groups: usize,
    pub exclusive_groups: usize,
}

impl Library {
    /// Whether two tags belong to the same exclusive group, i.e. no customer carries both.
    pub fn mutually_exclusive(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.by_rank[a], &self.by_rank[b]);
        a.exclusive && a.group == b.group
    }
}

/// Creates `groups` groups and `tags` tags through the API and ranks the tags by a random
/// popularity order, so that popular tags are not all in the first groups.
pub async fn create(
    api: &Api,
    groups: usize,
    tags: usize,
    rng: &mut StdRng,
) -> anyhow::Result<Library> {
    // Exclusive groups model lifecycle-like dimensions ("新客/老客/流失"); one or two of them
    // are enough to exercise the at-most-one-per-group rule.
    let exclusive_groups = match groups {
        1 => 0,
        2..=3 => 1,
        _ => 2,
    };
    let mut group_ids = Vec::with_capacity(groups);
    for g in 0..groups {
        let exclusive = g < exclusive_groups;
        let name = if exclusive {
            format!("互斥分组{:02}", g + 1)
        } else {
            format!("分组{:02}", g + 1)
        };
        let group = api
            .post(
                "/api/v1/tag-groups",
                &json!({
                    "name": name,
                    "dimension": DIMENSIONS[g % DIMENSIONS.len()],
                    "exclusive": exclusive,
                    "sort_order": g,
                }),
            )
            .await
            .with_context(|| format!("creating tag group {name}"))?;
        group_ids.push((id_of(&group)?, exclusive));
    }

    let mut library = Vec::with_capacity(tags);
    for t in 0..tags {
        let group = t % groups;
        let (group_id, exclusive) = group_ids[group];
        let name = format!("标签{:04}", t + 1);
        let tag = api
            .post(
                "/api/v1/tags",
                &json!({ "group_id": group_id, "name": name, "sort_order": t / groups }),
            )
            .await
            .with_context(|| format!("creating tag {name}"))?;
        library.push(Tag {
            id: id_of(&tag)?,
            group,
            exclusive,
        });
    }
    library.shuffle(rng);
    Ok(Library {
        by_rank: library,
        groups,
        exclusive_groups,
    })
}

/// A tag outside the library, which no seeded customer carries: the write phase puts it on
/// customers one by one.
pub async fn write_tag(api: &Api) -> anyhow::Result<i64> {
    let group = api
        .post(
            "/api/v1/tag-groups",
            &json!({"name": "基准写入", "dimension": DIMENSIONS[0]}),
        )
        .await
        .context("creating the write tag's group")?;
    let tag = api
        .post(
            "/api/v1/tags",
            &json!({"group_id": id_of(&group)?, "name": "刚写入"}),
        )
        .await
        .context("creating the write tag")?;
    id_of(&tag)
}

fn id_of(value: &serde_json::Value) -> anyhow::Result<i64> {
    value["id"]
        .as_i64()
        .with_context(|| format!("the answer has no numeric id: {value}"))
}
