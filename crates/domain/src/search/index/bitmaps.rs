//! One tenant's bitmaps and the set algebra of a filter over them. Pure: no database.

use std::collections::HashMap;

use roaring::{MultiOps, RoaringBitmap};

use crate::access::{Scope, Viewer};
use crate::kernel::ids::TenantId;
use crate::search::Resolved;

/// What the index holds of one customer: the categorical parts of its record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) id: u32,
    pub(crate) owner: Option<i64>,
    pub(crate) channel: Option<i64>,
    pub(crate) stage: Option<String>,
    pub(crate) tags: Vec<i64>,
    /// (select field, value) pairs.
    pub(crate) fields: Vec<(i64, String)>,
}

/// The bitmaps of one tenant, current as of `version` of its data.
#[derive(Debug, Clone)]
pub struct TenantIndex {
    pub(crate) tenant: TenantId,
    pub(crate) version: i64,
    /// Customers not deleted.
    pub(crate) live: RoaringBitmap,
    pub(crate) tags: HashMap<i64, RoaringBitmap>,
    pub(crate) owners: HashMap<i64, RoaringBitmap>,
    pub(crate) channels: HashMap<i64, RoaringBitmap>,
    pub(crate) stages: HashMap<String, RoaringBitmap>,
    pub(crate) fields: HashMap<(i64, String), RoaringBitmap>,
}

/// Adds `id` to `bitmap`, appending where ids come in ascending order (the builds').
pub(crate) fn push(bitmap: &mut RoaringBitmap, id: u32) {
    if bitmap.try_push(id).is_err() {
        bitmap.insert(id);
    }
}

/// Adds `id` to the bitmap under `key`.
fn put<K: std::hash::Hash + Eq>(map: &mut HashMap<K, RoaringBitmap>, key: K, id: u32) {
    push(map.entry(key).or_default(), id);
}

impl TenantIndex {
    pub(crate) fn empty(tenant: TenantId, version: i64) -> TenantIndex {
        TenantIndex {
            tenant,
            version,
            live: RoaringBitmap::new(),
            tags: HashMap::new(),
            owners: HashMap::new(),
            channels: HashMap::new(),
            stages: HashMap::new(),
            fields: HashMap::new(),
        }
    }

    /// The tenant whose customers these are.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The data version the bitmaps are current with.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Live customers held.
    pub fn customers(&self) -> u64 {
        self.live.len()
    }

    /// Adds a live customer's record (not its tags, which come per tag).
    pub(crate) fn add_record(&mut self, member: &Member) {
        push(&mut self.live, member.id);
        if let Some(owner) = member.owner {
            put(&mut self.owners, owner, member.id);
        }
        if let Some(channel) = member.channel {
            put(&mut self.channels, channel, member.id);
        }
        if let Some(stage) = &member.stage {
            put(&mut self.stages, stage.clone(), member.id);
        }
        for (field, value) in &member.fields {
            put(&mut self.fields, (*field, value.clone()), member.id);
        }
        for tag in &member.tags {
            put(&mut self.tags, *tag, member.id);
        }
    }

    /// Replaces what the index holds of the customers in `changed` by `members` (the live
    /// ones among them, as they are now), and moves the index to `version`.
    pub(crate) fn replace(&mut self, version: i64, changed: &RoaringBitmap, members: &[Member]) {
        self.live -= changed;
        fn forget<K>(map: &mut HashMap<K, RoaringBitmap>, changed: &RoaringBitmap) {
            map.retain(|_, bitmap| {
                *bitmap -= changed;
                !bitmap.is_empty()
            });
        }
        forget(&mut self.tags, changed);
        forget(&mut self.owners, changed);
        forget(&mut self.channels, changed);
        forget(&mut self.stages, changed);
        forget(&mut self.fields, changed);
        for member in members {
            self.add_record(member);
        }
        self.version = self.version.max(version);
    }

    /// Bytes the bitmaps take (their containers; the maps' own overhead is small beside them).
    pub fn bytes(&self) -> u64 {
        let of = |b: &RoaringBitmap| {
            let s = b.statistics();
            s.n_bytes_array_containers
                + s.n_bytes_run_containers
                + s.n_bytes_bitset_containers
                + u64::from(s.n_containers) * 16
                + 48
        };
        of(&self.live)
            + self.tags.values().map(of).sum::<u64>()
            + self.owners.values().map(of).sum::<u64>()
            + self.channels.values().map(of).sum::<u64>()
            + self
                .stages
                .iter()
                .map(|(k, b)| of(b) + k.len() as u64)
                .sum::<u64>()
            + self
                .fields
                .iter()
                .map(|(k, b)| of(b) + k.1.len() as u64)
                .sum::<u64>()
    }

    /// The customers `viewer` may see: the live ones in the viewer's scope.
    fn visible(&self, viewer: &Viewer) -> Option<Vec<&RoaringBitmap>> {
        match viewer.scope {
            Scope::Tenant => Some(vec![&self.live]),
            Scope::Own(staff) => Some(vec![&self.live, self.owners.get(&staff.0)?]),
            Scope::Nothing => None,
        }
    }

    /// The customers `viewer` sees that meet every bitmap part of `resolved` (tags, owner,
    /// channel, stage, select fields); [`Resolved::has_residual`] says whether more must hold.
    pub(crate) fn candidates(&self, viewer: &Viewer, resolved: &Resolved) -> RoaringBitmap {
        let f = resolved.filter();
        let Some(mut required) = self.visible(viewer) else {
            return RoaringBitmap::new();
        };
        // A term whose bitmap does not exist (no customer holds it) matches nobody.
        let mut wanted: Vec<Option<&RoaringBitmap>> = Vec::new();
        wanted.extend(f.all_of.iter().map(|t| self.tags.get(&t.0)));
        if let Some(owner) = f.owner_id {
            wanted.push(self.owners.get(&owner.0));
        }
        if let Some(channel) = f.source_channel_id {
            wanted.push(self.channels.get(&channel));
        }
        if let Some(stage) = &f.project_stage {
            wanted.push(self.stages.get(stage));
        }
        for term in resolved.field_terms().iter().filter(|t| t.select) {
            wanted.push(self.fields.get(&(term.field, term.value.clone())));
        }
        let Some(more) = wanted.into_iter().collect::<Option<Vec<_>>>() else {
            return RoaringBitmap::new();
        };
        required.extend(more);
        // The smallest first: every intersection after it is at most its size.
        required.sort_by_key(|b| b.len());
        let mut result = required[0].clone();
        for bitmap in &required[1..] {
            if result.is_empty() {
                return result;
            }
            result &= *bitmap;
        }
        if !f.any_of.is_empty() {
            let any = f.any_of.iter().filter_map(|t| self.tags.get(&t.0)).union();
            result &= any;
        }
        for tag in &f.none_of {
            if let Some(bitmap) = self.tags.get(&tag.0) {
                result -= bitmap;
            }
        }
        result
    }

    /// How many customers `viewer` sees carry each tag the index holds.
    pub(crate) fn tag_counts(&self, viewer: &Viewer) -> HashMap<i64, u64> {
        let Some(visible) = self.visible(viewer) else {
            return HashMap::new();
        };
        let visible = match visible.as_slice() {
            [one] => (*one).clone(),
            many => many.iter().copied().intersection(),
        };
        self.tags
            .iter()
            .map(|(tag, bitmap)| (*tag, bitmap.intersection_len(&visible)))
            .collect()
    }
}

/// The page of `result` after `cursor` (ids below it), newest (highest id) first: up to
/// `limit` ids, and whether more follow.
pub(crate) fn page_of(result: &RoaringBitmap, limit: u64, cursor: Option<i64>) -> (Vec<i64>, bool) {
    let mut iter = result.iter();
    match cursor {
        Some(after) if after <= 0 => return (Vec::new(), false),
        Some(after) => {
            if let Ok(below) = u32::try_from(after - 1) {
                iter.advance_back_to(below);
            }
        }
        None => {}
    }
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut ids: Vec<i64> = iter
        .rev()
        .take(take.saturating_add(1))
        .map(i64::from)
        .collect();
    let more = ids.len() > take;
    ids.truncate(take);
    (ids, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_down_from_the_cursor() {
        let result: RoaringBitmap = [1, 5, 9, 70_000, 140_000].into_iter().collect();
        assert_eq!(page_of(&result, 2, None), (vec![140_000, 70_000], true));
        assert_eq!(page_of(&result, 2, Some(70_000)), (vec![9, 5], true));
        assert_eq!(page_of(&result, 2, Some(5)), (vec![1], false));
        assert_eq!(page_of(&result, 2, Some(1)), (vec![], false));
        assert_eq!(page_of(&result, 10, Some(i64::MAX)).0.len(), 5);
    }

    #[test]
    fn a_replaced_customer_leaves_every_bitmap_it_left() {
        let mut index = TenantIndex::empty(TenantId(1), 1);
        let member = Member {
            id: 7,
            owner: Some(3),
            channel: Some(4),
            stage: Some("won".into()),
            tags: vec![10, 11],
            fields: vec![(5, "red".into())],
        };
        index.add_record(&member);
        let changed: RoaringBitmap = [7].into_iter().collect();
        let moved = Member {
            tags: vec![11],
            owner: None,
            ..member
        };
        index.replace(2, &changed, &[moved]);
        assert!(!index.tags.contains_key(&10));
        assert!(index.tags[&11].contains(7));
        assert!(index.owners.is_empty());
        assert_eq!(index.version, 2);
        index.replace(3, &changed, &[]);
        assert!(index.live.is_empty() && index.tags.is_empty() && index.fields.is_empty());
    }
}
