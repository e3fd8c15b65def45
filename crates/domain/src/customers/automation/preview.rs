//! A dry run: what a set of rules (the tenant's, with one drafted, changed or disabled) would
//! do to the tags of every customer a viewer sees, without writing anything. Each customer is
//! evaluated exactly as the engine would on its next change — the same facts, links, vetoes,
//! order and exclusive groups — and compared with the tags it carries now, so what the preview
//! says is what saving the rules then does. Owners a drafted `assign_owner` would give are not
//! simulated (nor, therefore, tags that depend on them).

use super::*;
use std::collections::BTreeMap;

use crate::access::Viewer;

/// Customers read per transaction.
const BATCH: u64 = 500;
/// Customers named per tag and direction.
const SAMPLE: usize = 20;

/// What the rules would do to one tag.
#[derive(Debug, Clone, Serialize)]
pub struct TagEffect {
    pub tag_id: TagId,
    pub gain: u64,
    pub lose: u64,
    /// Up to 20 customers who would gain it, by id.
    pub gaining: Vec<CustomerId>,
    /// Up to 20 customers who would lose it, by id.
    pub losing: Vec<CustomerId>,
}

/// What the rules would do to the customers a viewer sees.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// Customers evaluated.
    pub customers: u64,
    /// The tags that would change, by tag id.
    pub tags: Vec<TagEffect>,
}

/// Evaluates `rules` (enabled ones; a drafted rule may carry any id) on every customer
/// `viewer` sees and reports the tags that would change. The links of rule `kept` count as a
/// person's (a rule disabled with `keep_tags`).
pub(crate) async fn preview(
    db: &DatabaseConnection,
    viewer: &Viewer,
    rules: Vec<Rule>,
    kept: Option<RuleId>,
    now: DateTime<Utc>,
) -> DomainResult<Preview> {
    let tenant = viewer.tenant;
    let set = ruleset::compose(db, tenant, rules).await?;
    let clock = set.clock(now);
    let mut effects: BTreeMap<TagId, TagEffect> = BTreeMap::new();
    let mut cursor = 0_i64;
    let mut customers = 0_u64;
    loop {
        // One snapshot per batch; nothing is written, and the transaction is rolled back.
        let txn = db.begin().await?;
        let rows = customer::Entity::find()
            .filter(viewer.condition())
            .filter(customer::Column::DeletedAt.is_null())
            .filter(customer::Column::Id.gt(cursor))
            .order_by_asc(customer::Column::Id)
            .limit(BATCH)
            .all(&txn)
            .await
            .step("reading customers to preview")?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id.0).collect();
        let mut links = current_links(&txn, &ids).await?;
        let mut vetoes = read_vetoes(&txn, &ids).await?;
        let facts = load_facts_many(&txn, &rows, &set.defs, &set.measured, false).await?;
        for (row, facts) in rows.iter().zip(&facts) {
            let mut current = links.remove(&row.id.0).unwrap_or_default();
            for link in current
                .iter_mut()
                .filter(|l| kept.is_some() && l.rule == kept)
            {
                link.source = TagSource::Manual;
            }
            let vetoes = vetoes.remove(&row.id.0).unwrap_or_default();
            let base: Vec<Link> = current
                .iter()
                .copied()
                .filter(|l| l.source != TagSource::Rule)
                .collect();
            let carried: HashSet<TagId> = current.iter().map(|l| l.tag).collect();
            let (wants, _) = evaluate_all(&set, facts, &base, &vetoes, &clock, &carried);
            let after: HashSet<TagId> = resolve(&base, &wants, &vetoes, &set.info)
                .tags
                .into_keys()
                .collect();
            let diff = after
                .difference(&carried)
                .map(|t| (*t, true))
                .chain(carried.difference(&after).map(|t| (*t, false)));
            for (tag, gained) in diff {
                let effect = effects.entry(tag).or_insert_with(|| TagEffect {
                    tag_id: tag,
                    gain: 0,
                    lose: 0,
                    gaining: Vec::new(),
                    losing: Vec::new(),
                });
                let (count, sample) = if gained {
                    (&mut effect.gain, &mut effect.gaining)
                } else {
                    (&mut effect.lose, &mut effect.losing)
                };
                *count += 1;
                if sample.len() < SAMPLE {
                    sample.push(row.id);
                }
            }
        }
        txn.rollback().await?;
        customers += rows.len() as u64;
        match rows.last() {
            Some(last) if rows.len() as u64 == BATCH => cursor = last.id.0,
            _ => break,
        }
    }
    Ok(Preview {
        customers,
        tags: effects.into_values().collect(),
    })
}
