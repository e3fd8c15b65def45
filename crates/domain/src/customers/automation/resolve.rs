//! Deciding, without writing: every enabled rule evaluated in order on one customer, each
//! seeing the tags the rules before it settled, and the rules' wishes resolved against the
//! links no rule owns, the exclusive groups and the vetoes. The engine, the preview and the
//! evaluation endpoint share it.

use super::*;

/// A link the customer has now.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    pub(super) tag: TagId,
    pub(super) source: TagSource,
    pub(super) rule: Option<RuleId>,
    pub(super) rule_version: Option<i32>,
}

/// One rule's wish for a tag, with why.
#[derive(Debug, Clone)]
pub(super) struct Want {
    pub(super) tag: TagId,
    pub(super) rule: usize,
    pub(super) priority: i32,
    pub(super) rule_id: RuleId,
    /// What a tier adds to the explanation.
    pub(super) extra: Option<String>,
}

/// The tags the customer ends up with: the links no rule owns (a person's, a channel's), and
/// the rules' wishes, resolved by the exclusive groups and the vetoes.
pub(super) struct Resolution<'a> {
    /// Each tag, with the wish that puts it there (`None`: a link no rule owns).
    pub(super) tags: HashMap<TagId, Option<&'a Want>>,
    pub(super) groups: HashSet<TagGroupId>,
}

pub(super) fn resolve<'a>(
    base: &[Link],
    wants: &'a [Want],
    vetoes: &HashSet<TagId>,
    info: &HashMap<TagId, TagInfo>,
) -> Resolution<'a> {
    let group_of = |t: &TagId| info.get(t).map(|i| (i.group, i.exclusive));
    let mut tags: HashMap<TagId, Option<&Want>> = base.iter().map(|l| (l.tag, None)).collect();
    // Exclusive groups a person chose a tag in: no rule changes them.
    let chosen: HashSet<TagGroupId> = base
        .iter()
        .filter(|l| !l.source.is_automatic())
        .filter_map(|l| group_of(&l.tag).filter(|(_, e)| *e).map(|(g, _)| g))
        .collect();
    let mut winners: HashMap<TagGroupId, &Want> = HashMap::new();
    for want in wants {
        // A vetoed tag stays off.
        if vetoes.contains(&want.tag) {
            continue;
        }
        let Some((group, exclusive)) = group_of(&want.tag) else {
            continue;
        };
        if exclusive {
            if chosen.contains(&group) {
                continue;
            }
            let better = |w: &Want| {
                (want.priority, std::cmp::Reverse(want.rule_id))
                    > (w.priority, std::cmp::Reverse(w.rule_id))
            };
            match winners.get(&group) {
                Some(current) if !better(current) => {}
                _ => {
                    winners.insert(group, want);
                }
            }
        } else {
            let entry = tags.entry(want.tag).or_insert(Some(want));
            if let Some(current) = entry
                && (want.priority, std::cmp::Reverse(want.rule_id))
                    > (current.priority, std::cmp::Reverse(current.rule_id))
            {
                *entry = Some(want);
            }
        }
    }
    for (group, want) in winners {
        // The winner takes the place of the group's automatic links.
        tags.retain(|t, _| group_of(t).is_none_or(|(g, _)| g != group) || *t == want.tag);
        let entry = tags.entry(want.tag).or_insert(Some(want));
        if entry.is_some() {
            *entry = Some(want);
        }
    }
    let groups = tags
        .keys()
        .filter_map(|t| group_of(t).map(|(g, _)| g))
        .collect();
    Resolution { tags, groups }
}

impl TagView for Resolution<'_> {
    fn has(&self, tag: TagId) -> bool {
        self.tags.contains_key(&tag)
    }
    fn has_in(&self, group: TagGroupId) -> bool {
        self.groups.contains(&group)
    }
}

/// The customer's current tags as a condition sees them.
pub(super) struct Present {
    pub(super) tags: HashSet<TagId>,
    pub(super) groups: HashSet<TagGroupId>,
}

impl Present {
    /// No tag: for a condition that reads none.
    pub(super) fn none() -> Present {
        Present {
            tags: HashSet::new(),
            groups: HashSet::new(),
        }
    }
}

impl TagView for Present {
    fn has(&self, tag: TagId) -> bool {
        self.tags.contains(&tag)
    }
    fn has_in(&self, group: TagGroupId) -> bool {
        self.groups.contains(&group)
    }
}

/// The tier a score reaches: the tier with the highest `min` not above it.
pub(super) fn tier_of(score: f64, tiers: &[rules::Tier]) -> Option<&rules::Tier> {
    tiers
        .iter()
        .filter(|t| t.min <= score)
        .max_by(|a, b| a.min.total_cmp(&b.min))
}

/// One rule's verdict on the customer: whether it holds, and when that can next change.
pub(crate) struct Verdict {
    pub(crate) rule: usize,
    pub(crate) holds: bool,
    pub(crate) next: Option<DateTime<Utc>>,
}

/// Evaluates every rule in order, each seeing the tags the rules before it settled, and
/// returns their wishes for tags and their verdicts.
///
/// An archived tag is not given any more, but a customer carrying it keeps it while its rule
/// holds.
pub(super) fn evaluate_all(
    set: &RuleSet,
    facts: &CustomerFacts,
    base: &[Link],
    vetoes: &HashSet<TagId>,
    clock: &Clock,
    carried: &HashSet<TagId>,
) -> (Vec<Want>, Vec<Verdict>) {
    let mut wants: Vec<Want> = Vec::new();
    let mut verdicts = Vec::with_capacity(set.rules.len());
    for (i, rule) in set.rules.iter().enumerate() {
        // Only a rule that reads tags needs the tags settled so far.
        let reads_tags = rule.condition.as_ref().is_some_and(|c| {
            let (tags, groups) = c.reads();
            !tags.is_empty() || !groups.is_empty()
        });
        let evaluation = if reads_tags {
            let view = resolve(base, &wants, vetoes, &set.info);
            eval::decide(rule.condition.as_ref(), facts, &view, clock)
        } else {
            eval::decide(rule.condition.as_ref(), facts, &Present::none(), clock)
        };
        let mut next = evaluation.next_change;
        for action in &rule.actions {
            let (tag, extra) = match action {
                RuleAction::AddTag { tag_id } => (Some(*tag_id), None),
                RuleAction::SetTier { score, tiers } => {
                    let (value, due) = eval::measure(score, facts, clock);
                    next = earliest(next, due);
                    let value = value.unwrap_or(0.0);
                    let tier = tier_of(value, tiers);
                    let text = tier.map(|t| format!("score {value:.2} ≥ tier minimum {}", t.min));
                    (tier.map(|t| t.tag_id), text)
                }
                RuleAction::CreateTask { .. }
                | RuleAction::AssignOwner { .. }
                | RuleAction::NotifyOwner { .. }
                | RuleAction::NotifyCustomer { .. } => (None, None),
            };
            let assignable =
                |tag: &TagId| set.info.get(tag).is_some_and(|i| i.active) || carried.contains(tag);
            if let (true, Some(tag)) = (evaluation.holds, tag.filter(assignable)) {
                // Explained only if the tag is put on (`apply::links`).
                wants.push(Want {
                    tag,
                    rule: i,
                    priority: rule.priority,
                    rule_id: rule.id,
                    extra,
                });
            }
        }
        verdicts.push(Verdict {
            rule: i,
            holds: evaluation.holds,
            next,
        });
    }
    (wants, verdicts)
}

pub(super) fn earliest(
    a: Option<DateTime<Utc>>,
    b: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
        (a, b) => a.or(b),
    }
}
