//! A tenant's rules compiled for evaluation — parsed, in the order they run, with what they
//! know of the tenant's tags, its timezone and custom fields — kept in memory per process
//! under the tenant's configuration version (`support::config_version`). Every evaluation
//! reads the version in its own transaction and rebuilds the set when it moved, so a rule
//! saved through any process applies to the next change everywhere.

use std::sync::{Arc, Mutex, OnceLock};

use super::*;
use crate::rules::condition::FactKind;
use crate::support::config_version;

/// Tenants whose sets a process keeps; past this the cache starts over.
const TENANTS_HELD: usize = 10_000;

pub(crate) struct RuleSet {
    version: i64,
    /// The enabled rules, in the order they run.
    pub(crate) rules: Vec<Rule>,
    /// Every tag of the tenant: group, exclusivity, whether it may be assigned.
    pub(crate) info: HashMap<TagId, TagInfo>,
    pub(crate) tz: Tz,
    pub(crate) defs: Vec<CustomFieldDef>,
    /// The facts the rules measure (and, for events, the kinds; `None` for any kind).
    pub(crate) measured: Vec<(FactKind, Option<Vec<String>>)>,
}

impl RuleSet {
    pub(crate) fn clock(&self, now: DateTime<Utc>) -> Clock {
        Clock { now, tz: self.tz }
    }
}

/// What `rules` measure.
pub(crate) fn measured(rules: &[Rule]) -> Vec<(FactKind, Option<Vec<String>>)> {
    let mut out = Vec::new();
    for rule in rules {
        if let Some(condition) = &rule.condition {
            condition.measures(&mut out);
        }
        for action in &rule.actions {
            if let RuleAction::SetTier { score, .. } = action {
                score.measures(&mut out);
            }
        }
    }
    out
}

fn cache() -> &'static Mutex<HashMap<TenantId, Arc<RuleSet>>> {
    static CACHE: OnceLock<Mutex<HashMap<TenantId, Arc<RuleSet>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A rule set of `rules` (enabled ones) with the tenant's tags, timezone and custom fields,
/// in the order they would run: for a preview, never kept.
pub(crate) async fn compose<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    rules: Vec<Rule>,
) -> DomainResult<RuleSet> {
    let info = tag_infos(conn, tenant).await?;
    Ok(RuleSet {
        version: 0,
        measured: measured(&rules),
        rules: in_order(rules, &info),
        info,
        tz: timezone(conn, tenant).await?,
        defs: custom_fields::list(conn, tenant).await?,
    })
}

/// `rules` in the order they run (priority order, should they form a circle).
fn in_order(rules: Vec<Rule>, info: &HashMap<TagId, TagInfo>) -> Vec<Rule> {
    match rules::graph::order(&rules, &|t| info.get(&t).copied()) {
        Ok(order) => {
            let mut slots: Vec<Option<Rule>> = rules.into_iter().map(Some).collect();
            order.into_iter().filter_map(|i| slots[i].take()).collect()
        }
        Err(_) => rules,
    }
}

/// The tenant's rule set as of the configuration `conn` sees.
pub(crate) async fn rule_set<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> DomainResult<Arc<RuleSet>> {
    let version = config_version::current(conn, tenant).await?;
    let held = cache()
        .lock()
        .ok()
        .and_then(|held| held.get(&tenant).cloned())
        .filter(|set| set.version == version);
    if let Some(set) = held {
        return Ok(set);
    }
    let rules = load_rules(conn, tenant, true).await?;
    let info = tag_infos(conn, tenant).await?;
    // A circle cannot be saved; should concurrent saves have made one, priority order runs.
    let rules = in_order(rules, &info);
    let set = Arc::new(RuleSet {
        version,
        measured: measured(&rules),
        rules,
        info,
        tz: timezone(conn, tenant).await?,
        defs: custom_fields::list(conn, tenant).await?,
    });
    // Version 0 (nothing recorded yet) is the same in every database: not worth keeping.
    if version != 0
        && let Ok(mut held) = cache().lock()
    {
        if held.len() >= TENANTS_HELD {
            held.clear();
        }
        held.insert(tenant, set.clone());
    }
    Ok(set)
}
