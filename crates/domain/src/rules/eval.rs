//! The evaluator: a pure function of (customer facts, condition, clock) that says whether
//! the condition holds, the value and verdict of every node (the explanation), and when the
//! verdict can next change with no new fact (the earliest instant a counted fact leaves a
//! window or a "days since" crosses its threshold at a local midnight; `None` for never).
//! It reads no database and no clock of its own, so previews, tests and the scheduler run
//! exactly what real-time evaluation runs.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;

use super::condition::{Aggregate, Condition, FactFilter, FactKind, Metric, Op, Window};
use super::facts::{CustomerFacts, Datum};
use crate::kernel::ids::{TagGroupId, TagId};
use crate::kernel::values::OrderStatus;

/// The tags a condition sees on the customer.
pub trait TagView {
    fn has(&self, tag: TagId) -> bool;
    fn has_in(&self, group: TagGroupId) -> bool;
}

/// The instant of the evaluation and the timezone local days are counted in.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: DateTime<Utc>,
    pub tz: Tz,
}

impl Clock {
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// The instant a local date begins.
    pub fn midnight(&self, date: NaiveDate) -> DateTime<Utc> {
        let start = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        // Where clocks jump forward at midnight, the day begins at the first local time that
        // exists (within the next few hours).
        (0..=4)
            .find_map(|h| {
                self.tz
                    .from_local_datetime(&(start + Duration::hours(h)))
                    .earliest()
            })
            .map_or_else(|| start.and_utc(), |t| t.with_timezone(&Utc))
    }

    /// Whole local days from `since` to now.
    pub fn days_since(&self, since: DateTime<Utc>) -> i64 {
        (self.local_date(self.now) - self.local_date(since)).num_days()
    }
}

/// One node of a condition as evaluated: where it is in the tree (a JSON pointer below the
/// condition), what it measured, and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeTrace {
    pub path: String,
    pub node: &'static str,
    pub holds: bool,
    /// What the node measured: a field's value, a metric's number (amounts in fen), or null.
    pub value: Value,
    /// The same in words, with the threshold: "sum of orders.amount … = 6,200.00 元 > 5,000.00 元".
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub holds: bool,
    pub nodes: Vec<NodeTrace>,
    pub next_change: Option<DateTime<Utc>>,
}

impl Evaluation {
    /// The leaves that held, in words: why a rule that holds holds.
    pub fn reasons(&self) -> Vec<&NodeTrace> {
        let leaves: Vec<&NodeTrace> = self
            .nodes
            .iter()
            .filter(|n| n.holds && !matches!(n.node, "all" | "any" | "not"))
            .collect();
        if leaves.is_empty() {
            self.nodes.iter().take(1).collect()
        } else {
            leaves
        }
    }
}

/// Evaluates `condition` (`None`: a rule for every customer, which always holds).
pub fn evaluate(
    condition: Option<&Condition>,
    facts: &CustomerFacts,
    tags: &dyn TagView,
    clock: &Clock,
) -> Evaluation {
    run(condition, facts, tags, clock, true)
}

/// [`evaluate`] without the explanation: the verdict and the next change only, with no node
/// recorded and no word written — what real-time evaluation needs for every rule.
pub fn decide(
    condition: Option<&Condition>,
    facts: &CustomerFacts,
    tags: &dyn TagView,
    clock: &Clock,
) -> Evaluation {
    run(condition, facts, tags, clock, false)
}

fn run(
    condition: Option<&Condition>,
    facts: &CustomerFacts,
    tags: &dyn TagView,
    clock: &Clock,
    explain: bool,
) -> Evaluation {
    let mut eval = Eval {
        facts,
        tags,
        clock,
        explain,
        nodes: Vec::new(),
        next: None,
    };
    let holds = match condition {
        Some(condition) => eval.condition(condition, String::new()),
        None => true,
    };
    Evaluation {
        holds,
        nodes: eval.nodes,
        next_change: eval.next,
    }
}

/// The value of `metric` now, and when it can next change with no new fact.
pub fn measure(
    metric: &Metric,
    facts: &CustomerFacts,
    clock: &Clock,
) -> (Option<f64>, Option<DateTime<Utc>>) {
    struct NoTags;
    impl TagView for NoTags {
        fn has(&self, _: TagId) -> bool {
            false
        }
        fn has_in(&self, _: TagGroupId) -> bool {
            false
        }
    }
    let mut eval = Eval {
        facts,
        tags: &NoTags,
        clock,
        explain: false,
        nodes: Vec::new(),
        next: None,
    };
    let value = eval.metric(metric, true);
    (value, eval.next)
}

struct Eval<'a> {
    facts: &'a CustomerFacts,
    tags: &'a dyn TagView,
    clock: &'a Clock,
    /// Whether to record every node with its words (the explanation), or only decide.
    explain: bool,
    nodes: Vec<NodeTrace>,
    next: Option<DateTime<Utc>>,
}

impl Eval<'_> {
    fn due(&mut self, at: DateTime<Utc>) {
        if at > self.clock.now && self.next.is_none_or(|next| at < next) {
            self.next = Some(at);
        }
    }

    /// Long because each node kind is a few lines and they read best together.
    fn condition(&mut self, condition: &Condition, path: String) -> bool {
        let index = self.nodes.len();
        if self.explain {
            self.nodes.push(NodeTrace {
                path: path.clone(),
                node: "",
                holds: false,
                value: Value::Null,
                text: String::new(),
            });
        }
        let explain = self.explain;
        // Words and paths only for an explanation.
        let words = |make: &dyn Fn() -> String| if explain { make() } else { String::new() };
        let child = |kind: &str, i: Option<usize>| {
            if !explain {
                return String::new();
            }
            match i {
                Some(i) => format!("{path}/{kind}/{i}"),
                None => format!("{path}/{kind}"),
            }
        };
        let (node, holds, value, text) = match condition {
            Condition::All { all } => {
                let verdicts: Vec<bool> = all
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.condition(c, child("all", Some(i))))
                    .collect();
                let met = verdicts.iter().filter(|v| **v).count();
                let text = words(&|| format!("all of {} ({met} met)", verdicts.len()));
                ("all", met == verdicts.len(), Value::Null, text)
            }
            Condition::Any { any } => {
                let verdicts: Vec<bool> = any
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.condition(c, child("any", Some(i))))
                    .collect();
                let met = verdicts.iter().filter(|v| **v).count();
                let text = words(&|| format!("any of {} ({met} met)", verdicts.len()));
                ("any", met > 0, Value::Null, text)
            }
            Condition::Not { not } => {
                let inner = self.condition(not, child("not", None));
                ("not", !inner, Value::Null, "not".to_owned())
            }
            Condition::HasTag { has_tag } => {
                let has = self.tags.has(*has_tag);
                let text = words(&|| format!("has tag {has_tag}: {}", yes_no(has)));
                ("has_tag", has, Value::Bool(has), text)
            }
            Condition::LacksTag { lacks_tag } => {
                let has = self.tags.has(*lacks_tag);
                let text = words(&|| format!("lacks tag {lacks_tag}: {}", yes_no(!has)));
                ("lacks_tag", !has, Value::Bool(has), text)
            }
            Condition::HasTagIn { has_tag_in } => {
                let has = self.tags.has_in(*has_tag_in);
                let text = words(&|| format!("has a tag of group {has_tag_in}: {}", yes_no(has)));
                ("has_tag_in", has, Value::Bool(has), text)
            }
            Condition::Field { field, op, value } => {
                let datum = self.facts.field(field);
                let holds = compare_field(datum, *op, value.as_ref(), self.clock);
                if !explain {
                    return holds;
                }
                let shown = datum.map_or(Value::Null, datum_json);
                let text = format!(
                    "{field} = {} {} {}",
                    show_json(&shown),
                    op.symbol(),
                    value.as_ref().map_or_else(String::new, show_json)
                );
                ("field", holds, shown, text.trim_end().to_owned())
            }
            Condition::Metric { metric, op, value } => self.metric_comparison(metric, *op, value),
        };
        if self.explain {
            self.nodes[index] = NodeTrace {
                path,
                node,
                holds,
                value,
                text,
            };
        }
        holds
    }

    fn metric_comparison(
        &mut self,
        metric: &Metric,
        op: Op,
        threshold: &Option<Value>,
    ) -> (&'static str, bool, Value, String) {
        let threshold_number = threshold.as_ref().and_then(Value::as_f64);
        // A "days since" against a threshold changes verdict at one known local midnight.
        let days_reference = match metric {
            Metric::DaysSince { .. } | Metric::DaysSinceLast { .. } => {
                Some(self.days_reference(metric))
            }
            _ => None,
        };
        let value = match days_reference {
            Some(reference) => reference.map(|r| self.clock.days_since(r) as f64),
            None => self.metric(metric, true),
        };
        let holds = match (op, value, threshold_number) {
            (Op::IsSet, v, _) => {
                let want = threshold.as_ref().and_then(Value::as_bool).unwrap_or(true);
                v.is_some() == want
            }
            (op, Some(v), Some(t)) => op.ordered(v, t),
            _ => false,
        };
        if let (Some(Some(reference)), Some(k)) = (days_reference, threshold_number) {
            self.days_crossing(reference, op, k);
        }
        if !self.explain {
            return ("metric", holds, Value::Null, String::new());
        }
        let money = is_money(metric);
        let shown = |v: f64| {
            if money { yuan(v) } else { number(v) }
        };
        let text = format!(
            "{} = {} {} {}",
            describe(metric),
            value.map_or_else(|| "none".to_owned(), shown),
            op.symbol(),
            threshold_number.map_or_else(String::new, shown),
        );
        let json = value.map_or(Value::Null, json_number);
        ("metric", holds, json, text.trim_end().to_owned())
    }

    /// When `days since reference` next makes `op k` change its verdict.
    fn days_crossing(&mut self, reference: DateTime<Utc>, op: Op, k: f64) {
        let start = self.clock.local_date(reference);
        let today = self.clock.days_since(reference);
        let verdict = |d: i64| op.ordered(d as f64, k);
        let now_verdict = verdict(today);
        let mut candidates = [k.ceil() as i64, k.floor() as i64 + 1, k.ceil() as i64 + 1];
        candidates.sort_unstable();
        if let Some(day) = candidates
            .into_iter()
            .find(|&d| d > today && verdict(d) != now_verdict)
        {
            let date = start + Duration::days(day);
            let at = self.clock.midnight(date);
            self.due(at);
        }
    }

    /// The instant a days-since metric counts from, registering when a future fact would
    /// move it.
    fn days_reference(&mut self, metric: &Metric) -> Option<DateTime<Utc>> {
        match metric {
            Metric::DaysSince { days_since } => self.time_field(days_since),
            Metric::DaysSinceLast {
                days_since_last,
                filter,
                otherwise_since,
            } => {
                let now = self.clock.now;
                let times = self.fact_times(*days_since_last, filter.as_ref(), false);
                for &t in &times {
                    if t > now {
                        self.due(t);
                    }
                }
                times
                    .into_iter()
                    .filter(|t| *t <= now)
                    .max()
                    .or_else(|| otherwise_since.as_deref().and_then(|f| self.time_field(f)))
            }
            _ => None,
        }
    }

    fn time_field(&self, name: &str) -> Option<DateTime<Utc>> {
        match self.facts.field(name)? {
            Datum::Time(t) => Some(*t),
            Datum::Date(d) => Some(self.clock.midnight(*d)),
            _ => None,
        }
    }

    /// The metric's value now (`None` when there is nothing to measure: an average of no
    /// fact, days since a date never set). `track` registers when it can next change.
    fn metric(&mut self, metric: &Metric, track: bool) -> Option<f64> {
        match metric {
            Metric::Aggregate {
                aggregate,
                of,
                within,
                filter,
            } => self.aggregate(*aggregate, of, within.as_ref(), filter.as_ref(), track),
            Metric::DaysSince { .. } | Metric::DaysSinceLast { .. } => {
                let reference = self.days_reference(metric)?;
                if track {
                    // Counted in whole local days: it moves at the next local midnight.
                    let tomorrow = self.clock.local_date(self.clock.now) + Duration::days(1);
                    let at = self.clock.midnight(tomorrow);
                    self.due(at);
                }
                Some(self.clock.days_since(reference) as f64)
            }
            Metric::Score { score } => Some(
                score
                    .iter()
                    .map(|term| term.weight * self.metric(&term.metric, track).unwrap_or(0.0))
                    .sum(),
            ),
        }
    }

    fn aggregate(
        &mut self,
        aggregate: Aggregate,
        of: &str,
        within: Option<&Window>,
        filter: Option<&FactFilter>,
        track: bool,
    ) -> Option<f64> {
        let mut parts = of.splitn(2, '.');
        let fact = parts.next().and_then(FactKind::parse)?;
        let attribute = parts.next();
        let amounts = aggregate != Aggregate::Count;
        let now = self.clock.now;
        let samples: Vec<(DateTime<Utc>, Option<f64>)> =
            self.samples(fact, attribute, filter, amounts);
        let mut values = Vec::new();
        for (t, value) in samples {
            if track {
                self.window_changes(t, within);
            }
            if t <= now && self.in_window(t, within) {
                match (aggregate, value) {
                    (Aggregate::Count, _) => values.push(1.0),
                    (_, Some(v)) => values.push(v),
                    (_, None) => {}
                }
            }
        }
        if track && let Some(Window::Between { from, to }) = within {
            let (start, end) = (
                self.clock.midnight(*from),
                self.clock.midnight(*to + Duration::days(1)),
            );
            self.due(start);
            self.due(end);
        }
        match aggregate {
            Aggregate::Count => Some(values.len() as f64),
            Aggregate::Sum => Some(values.iter().sum()),
            Aggregate::Avg => {
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            }
            Aggregate::Max => values.into_iter().reduce(f64::max),
            Aggregate::Min => values.into_iter().reduce(f64::min),
        }
    }

    fn in_window(&self, t: DateTime<Utc>, within: Option<&Window>) -> bool {
        match within {
            None => true,
            Some(Window::Last { last_days }) => {
                t > self.clock.now - Duration::days(i64::from(*last_days))
            }
            Some(Window::Between { from, to }) => {
                let day = self.clock.local_date(t);
                *from <= day && day <= *to
            }
        }
    }

    /// Registers when the fact at `t` enters (a fact recorded ahead of time) or leaves the window.
    fn window_changes(&mut self, t: DateTime<Utc>, within: Option<&Window>) {
        if t > self.clock.now {
            self.due(t);
        } else if let Some(Window::Last { last_days }) = within {
            self.due(t + Duration::days(i64::from(*last_days)));
        }
    }

    /// The times of the matching facts of a kind.
    fn fact_times(
        &self,
        fact: FactKind,
        filter: Option<&FactFilter>,
        amounts: bool,
    ) -> Vec<DateTime<Utc>> {
        self.samples(fact, None, filter, amounts)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// `(occurred_at, attribute value)` of every fact of `fact` that passes `filter`.
    fn samples(
        &self,
        fact: FactKind,
        attribute: Option<&str>,
        filter: Option<&FactFilter>,
        amounts: bool,
    ) -> Vec<(DateTime<Utc>, Option<f64>)> {
        let empty = FactFilter::default();
        let filter = filter.unwrap_or(&empty);
        match fact {
            FactKind::Orders => self
                .facts
                .orders
                .iter()
                .filter(|o| match filter.status.as_deref() {
                    None | Some("paid") => o.status == OrderStatus::Paid,
                    Some("refunded") => o.status == OrderStatus::Refunded,
                    _ => true,
                })
                .filter(|o| {
                    filter.product_category.as_ref().is_none_or(|c| {
                        o.product_category.as_deref().is_some_and(|p| c.contains(p))
                    })
                })
                .filter(|o| match filter.currency.as_deref() {
                    Some(currency) => o.currency == currency,
                    None => !amounts || o.currency == "CNY",
                })
                .map(|o| (o.occurred_at, Some(o.amount_fen as f64)))
                .collect(),
            FactKind::FollowUps => {
                self.facts
                    .follow_ups
                    .iter()
                    .filter(|f| {
                        filter
                            .kind
                            .as_ref()
                            .is_none_or(|k| k.contains(f.kind.as_str()))
                    })
                    .filter(|f| {
                        filter.stage.as_ref().is_none_or(|s| {
                            f.stage.as_deref().is_some_and(|stage| s.contains(stage))
                        })
                    })
                    .map(|f| (f.occurred_at, None))
                    .collect()
            }
            FactKind::Events => {
                let property = attribute.and_then(|a| a.strip_prefix("properties."));
                self.facts
                    .events
                    .iter()
                    .filter(|e| filter.kind.as_ref().is_none_or(|k| k.contains(&e.kind)))
                    .map(|e| {
                        let value = property
                            .and_then(|p| e.properties.get(p))
                            .and_then(Value::as_f64);
                        (e.occurred_at, value)
                    })
                    .collect()
            }
        }
    }
}

/// `datum op value` for a field comparison. An unset field satisfies only `ne`, `not_in`
/// and `is_set: false`.
fn compare_field(datum: Option<&Datum>, op: Op, value: Option<&Value>, clock: &Clock) -> bool {
    if op == Op::IsSet {
        let want = value.and_then(Value::as_bool).unwrap_or(true);
        return datum.is_some() == want;
    }
    let Some(datum) = datum else {
        return matches!(op, Op::Ne | Op::NotIn);
    };
    let Some(value) = value else {
        return false;
    };
    let listed = |matches: &dyn Fn(&Value) -> bool| {
        value
            .as_array()
            .is_some_and(|items| items.iter().any(matches))
    };
    match datum {
        Datum::Text(text) => match op {
            Op::In => listed(&|v| v.as_str() == Some(text)),
            Op::NotIn => !listed(&|v| v.as_str() == Some(text)),
            _ => value.as_str().is_some_and(|v| op.ordered(text.as_str(), v)),
        },
        Datum::Number(n) => match op {
            Op::In => listed(&|v| v.as_f64() == Some(*n)),
            Op::NotIn => !listed(&|v| v.as_f64() == Some(*n)),
            _ => value.as_f64().is_some_and(|v| op.ordered(*n, v)),
        },
        Datum::Time(t) => parse_instant(value, clock).is_some_and(|v| op.ordered(*t, v)),
        Datum::Date(d) => value
            .as_str()
            .and_then(|v| v.parse::<NaiveDate>().ok())
            .is_some_and(|v| op.ordered(*d, v)),
        Datum::List(items) => match op {
            Op::Contains => value.as_str().is_some_and(|v| items.iter().any(|i| i == v)),
            _ => false,
        },
    }
}

/// An RFC 3339 instant, or a date meaning its local midnight.
pub(crate) fn parse_instant(value: &Value, clock: &Clock) -> Option<DateTime<Utc>> {
    let text = value.as_str()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    text.parse::<NaiveDate>().ok().map(|d| clock.midnight(d))
}

fn datum_json(datum: &Datum) -> Value {
    match datum {
        Datum::Text(t) => Value::from(t.as_str()),
        Datum::Number(n) => json_number(*n),
        Datum::Time(t) => Value::from(t.to_rfc3339()),
        Datum::Date(d) => Value::from(d.to_string()),
        Datum::List(l) => Value::from(l.clone()),
    }
}

fn json_number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn show_json(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        Value::Null => "none".to_owned(),
        other => other.to_string(),
    }
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "no" }
}

/// Whether the metric is an amount of money (fen), shown in 元.
fn is_money(metric: &Metric) -> bool {
    matches!(metric, Metric::Aggregate { aggregate, of, .. } if *aggregate != Aggregate::Count && of == "orders.amount")
}

/// An amount in fen as 元 with thousands separators: 620000 → "6,200.00 元".
pub fn yuan(fen: f64) -> String {
    let cents = fen.round() as i64;
    let (sign, cents) = if cents < 0 {
        ("-", -cents)
    } else {
        ("", cents)
    };
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02} 元", cents % 100)
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        format!("{n:.2}")
    }
}

/// A metric in words: "sum of orders.amount (paid, CNY) in the last 180 days".
pub fn describe(metric: &Metric) -> String {
    match metric {
        Metric::Aggregate {
            aggregate,
            of,
            within,
            filter,
        } => {
            let mut text = format!("{} of {of}", aggregate.as_str());
            let mut parts = Vec::new();
            if of.starts_with("orders") {
                let status = filter.as_ref().and_then(|f| f.status.clone());
                parts.push(status.unwrap_or_else(|| "paid".to_owned()));
                let currency = filter.as_ref().and_then(|f| f.currency.clone());
                if let Some(c) =
                    currency.or_else(|| (*aggregate != Aggregate::Count).then(|| "CNY".to_owned()))
                {
                    parts.push(c);
                }
            }
            if let Some(f) = filter {
                for (name, list) in [
                    ("category", &f.product_category),
                    ("kind", &f.kind),
                    ("stage", &f.stage),
                ] {
                    if let Some(list) = list {
                        parts.push(format!("{name} {}", list.values().join("/")));
                    }
                }
            }
            if !parts.is_empty() {
                text.push_str(&format!(" ({})", parts.join(", ")));
            }
            match within {
                Some(Window::Last { last_days }) => {
                    text.push_str(&format!(" in the last {last_days} days"));
                }
                Some(Window::Between { from, to }) => {
                    text.push_str(&format!(" from {from} to {to}"));
                }
                None => {}
            }
            text
        }
        Metric::DaysSince { days_since } => format!("days since {days_since}"),
        Metric::DaysSinceLast {
            days_since_last,
            otherwise_since,
            ..
        } => match otherwise_since {
            Some(field) => format!(
                "days since the last of {} (or {field})",
                days_since_last.as_str()
            ),
            None => format!("days since the last of {}", days_since_last.as_str()),
        },
        Metric::Score { score } => format!("score of {} terms", score.len()),
    }
}
