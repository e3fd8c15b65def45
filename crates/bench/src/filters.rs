//! The measured filters: `A AND B AND NOT C` over the tag library, distinct, and spread over
//! popularity so that results range from a large share of the customers down to a handful;
//! and filters mixing a tag with an owner, a project stage and a keyword.

use std::collections::HashSet;

use anyhow::bail;
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use scantag_domain::kernel::ids::{StaffId, TagId};
use scantag_domain::search;

use crate::library::Library;
use crate::seed::{CITIES, GIVEN, STAGES, SURNAMES};

/// Customers per page, in the API request and the SQL page alike.
pub const PAGE: u64 = 50;

#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub all_of: [i64; 2],
    pub none_of: i64,
    /// Popularity ranks of A, B and C, for the report.
    pub ranks: [usize; 3],
}

/// One question as the API and the domain take it.
#[derive(Debug, Clone)]
pub struct Question {
    /// The request body, with `limit`.
    pub body: Value,
    pub filter: search::Filter,
    pub label: String,
}

impl Filter {
    pub fn question(&self) -> Question {
        Question {
            body: self.search_body(),
            filter: search::Filter {
                all_of: self.all_of.iter().map(|t| TagId(*t)).collect(),
                none_of: vec![TagId(self.none_of)],
                ..search::Filter::default()
            },
            label: self.describe(),
        }
    }

    pub fn search_body(&self) -> Value {
        json!({ "all_of": self.all_of, "none_of": [self.none_of], "limit": PAGE })
    }

    pub fn describe(&self) -> String {
        format!(
            "tags {} AND {} AND NOT {} (popularity ranks {}, {}, {})",
            self.all_of[0],
            self.all_of[1],
            self.none_of,
            self.ranks[0] + 1,
            self.ranks[1] + 1,
            self.ranks[2] + 1
        )
    }
}

/// `count` distinct filters. Ranks are drawn log-uniformly, so each decade of popularity
/// (ranks 1–10, 10–100, …) gets a similar share of draws: pairs of popular tags match many
/// customers, pairs of rare ones match few. A and B never share an exclusive group, where the
/// answer would always be empty.
pub fn pick(library: &Library, count: usize, rng: &mut StdRng) -> anyhow::Result<Vec<Filter>> {
    let tags = library.by_rank.len();
    let mut seen = HashSet::new();
    let mut filters = Vec::with_capacity(count);
    let mut attempts = 0usize;
    while filters.len() < count {
        attempts += 1;
        if attempts > count.saturating_mul(1_000).max(10_000) {
            bail!(
                "could not find {count} distinct filters over {tags} tags; ask for fewer --queries"
            );
        }
        let a = log_rank(rng, tags);
        let b = log_rank(rng, tags);
        let c = log_rank(rng, tags);
        if a == b || c == a || c == b || library.mutually_exclusive(a, b) {
            continue;
        }
        let (a, b) = (a.min(b), a.max(b));
        if !seen.insert((a, b, c)) {
            continue;
        }
        filters.push(Filter {
            all_of: [library.by_rank[a].id, library.by_rank[b].id],
            none_of: library.by_rank[c].id,
            ranks: [a, b, c],
        });
    }
    Ok(filters)
}

/// `count` filters of one tag (log-uniform popularity) AND an owner AND a project stage AND a
/// keyword: a full name (rare), a surname (about one in 24) or a city in the company name
/// (about one in 17), in turn.
pub fn pick_mixed(
    library: &Library,
    owners: &[i64],
    count: usize,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<Question>> {
    if owners.is_empty() {
        bail!("mixed filters need at least one owner");
    }
    let tags = library.by_rank.len();
    Ok((0..count)
        .map(|i| {
            let rank = log_rank(rng, tags);
            let tag = library.by_rank[rank].id;
            let owner = owners[rng.random_range(0..owners.len())];
            let stage = STAGES[rng.random_range(0..STAGES.len())];
            let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
            let keyword = match i % 3 {
                0 => format!("{surname}{}", GIVEN[rng.random_range(0..GIVEN.len())]),
                1 => surname.to_owned(),
                _ => CITIES[rng.random_range(0..CITIES.len())].to_owned(),
            };
            Question {
                body: json!({"all_of": [tag], "owner_id": owner, "project_stage": stage,
                             "keyword": keyword, "limit": PAGE}),
                filter: search::Filter {
                    all_of: vec![TagId(tag)],
                    owner_id: Some(StaffId(owner)),
                    project_stage: Some(stage.to_owned()),
                    keyword: Some(keyword.clone()),
                    ..search::Filter::default()
                },
                label: format!(
                    "tag {tag} (rank {}) AND owner {owner} AND stage {stage} AND keyword {keyword}",
                    rank + 1
                ),
            }
        })
        .collect())
}

/// A rank in `0..tags`, log-uniformly distributed.
fn log_rank(rng: &mut StdRng, tags: usize) -> usize {
    let u: f64 = rng.random();
    let rank = ((tags + 1) as f64).powf(u).floor() as usize;
    rank.saturating_sub(1).min(tags - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::Tag;
    use rand::SeedableRng;

    #[test]
    fn filters_are_distinct_deterministic_and_spread_over_popularity() {
        let library = Library {
            by_rank: (0..200)
                .map(|t| Tag {
                    id: t as i64 + 1,
                    group: t % 20,
                    exclusive: t % 20 < 2,
                })
                .collect(),
            groups: 20,
            exclusive_groups: 2,
        };
        let first = pick(&library, 100, &mut StdRng::seed_from_u64(1)).unwrap();
        let again = pick(&library, 100, &mut StdRng::seed_from_u64(1)).unwrap();
        assert_eq!(
            first.iter().map(|f| f.ranks).collect::<Vec<_>>(),
            again.iter().map(|f| f.ranks).collect::<Vec<_>>()
        );
        let keys: HashSet<_> = first.iter().map(|f| f.ranks).collect();
        assert_eq!(keys.len(), 100);
        let popular = first.iter().filter(|f| f.ranks[0] < 10).count();
        let rare = first.iter().filter(|f| f.ranks[1] >= 50).count();
        assert!(popular > 20 && rare > 10, "popular {popular}, rare {rare}");
        for f in &first {
            assert!(!library.mutually_exclusive(f.ranks[0], f.ranks[1]));
            assert_ne!(f.none_of, f.all_of[0]);
            assert_ne!(f.none_of, f.all_of[1]);
        }
    }

    #[test]
    fn too_many_filters_for_a_tiny_library_is_an_error() {
        let library = Library {
            by_rank: (0..3)
                .map(|t| Tag {
                    id: t,
                    group: 0,
                    exclusive: false,
                })
                .collect(),
            groups: 1,
            exclusive_groups: 0,
        };
        // Three tags allow three filters: {A, B} is unordered and C is the remaining tag.
        assert!(pick(&library, 3, &mut StdRng::seed_from_u64(1)).is_ok());
        assert!(pick(&library, 4, &mut StdRng::seed_from_u64(1)).is_err());
    }
}
