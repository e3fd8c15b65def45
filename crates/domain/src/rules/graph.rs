//! The order rules run in. A rule that reads a tag (or a group) another rule may set runs
//! after that rule, so one pass settles every customer; among rules free to run, the higher
//! priority runs first (then the older rule). A set of rules that read each other's tags in a
//! circle has no such order and is refused when saved.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Rule;
use super::validate::TagInfo;
use crate::kernel::ids::{RuleId, TagId};

/// Whether rule `reader` reads something `producer` may set.
fn depends(reader: &Rule, producer: &Rule, info: &dyn Fn(TagId) -> Option<TagInfo>) -> bool {
    let (tags, groups) = reader
        .condition
        .as_ref()
        .map(|c| c.reads())
        .unwrap_or_default();
    if tags.is_empty() && groups.is_empty() {
        return false;
    }
    producer.produces().into_iter().any(|made| {
        let made_group = info(made).map(|i| i.group);
        tags.iter().any(|&read| {
            read == made || info(read).is_some_and(|i| i.exclusive && Some(i.group) == made_group)
        }) || groups.iter().any(|g| Some(*g) == made_group)
    })
}

/// The rules in the order they run, or the names of a circle among them.
pub fn order(
    rules: &[Rule],
    info: &dyn Fn(TagId) -> Option<TagInfo>,
) -> Result<Vec<usize>, Vec<String>> {
    let n = rules.len();
    // after[p] = the rules that read what p sets.
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    for (r, reader) in rules.iter().enumerate() {
        for (p, producer) in rules.iter().enumerate() {
            if depends(reader, producer, info) {
                after[p].push(r);
                waiting[r] += 1;
            }
        }
    }
    let key = |i: usize| (rules[i].priority, Reverse(rules[i].id));
    let mut ready: BinaryHeap<((i32, Reverse<RuleId>), usize)> = (0..n)
        .filter(|&i| waiting[i] == 0)
        .map(|i| (key(i), i))
        .collect();
    let mut out = Vec::with_capacity(n);
    while let Some((_, i)) = ready.pop() {
        out.push(i);
        for &r in &after[i] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.push((key(r), r));
            }
        }
    }
    if out.len() == n {
        return Ok(out);
    }
    Err(circle(rules, &after, &waiting))
}

/// One circle among the rules still waiting, as names, the first repeated at the end.
fn circle(rules: &[Rule], after: &[Vec<usize>], waiting: &[usize]) -> Vec<String> {
    let stuck: Vec<usize> = (0..rules.len()).filter(|&i| waiting[i] > 0).collect();
    // Walk backwards along edges between stuck rules until a rule repeats.
    let before = |r: usize| stuck.iter().copied().find(|&p| after[p].contains(&r));
    let mut path = Vec::new();
    let mut current = stuck.first().copied();
    while let Some(r) = current {
        if let Some(start) = path.iter().position(|&p| p == r) {
            let mut names: Vec<String> = path[start..]
                .iter()
                .rev()
                .map(|&i: &usize| rules[i].name.clone())
                .collect();
            if let Some(first) = names.first().cloned() {
                names.push(first);
            }
            return names;
        }
        path.push(r);
        current = before(r);
    }
    stuck.iter().map(|&i| rules[i].name.clone()).collect()
}
