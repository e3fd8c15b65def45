//! Checking metrics: aggregates over facts, their windows and filters, days since, scores.

use super::*;

impl Walker<'_> {
    pub(super) fn metric_comparison(&mut self, object: &Map<String, Value>, path: &str) {
        let Some(op) = self.op(object, path) else {
            return;
        };
        let value_at = format!("{path}/value");
        let value = object.get("value");
        match op {
            Op::IsSet => {
                if value.is_some_and(|v| !v.is_boolean()) {
                    self.issue(&value_at, "type", "true or false (default true)");
                }
            }
            Op::Eq | Op::Ne | Op::Gt | Op::Gte | Op::Lt | Op::Lte => match value {
                None => self.issue(&value_at, "required", "a number to compare with"),
                Some(v) if !v.is_number() => self.issue(&value_at, "type", "a number"),
                Some(_) => {}
            },
            _ => self.issue(
                &format!("{path}/op"),
                "op_not_allowed",
                "a metric allows eq, ne, gt, gte, lt, lte, is_set",
            ),
        }
    }

    /// Long because each metric kind checks its own operands.
    pub(super) fn metric(&mut self, value: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.issue(
                path,
                "too_deep",
                format!("a condition is at most {MAX_DEPTH} levels deep"),
            );
            return;
        }
        if !self.count(path) {
            return;
        }
        let Some((object, kind)) = self.node(value, path, &METRIC_KEYS, "a metric") else {
            return;
        };
        match kind {
            "aggregate" => {
                self.only_keys(object, path, &["aggregate", "of", "within", "where"]);
                let aggregate = object["aggregate"]
                    .as_str()
                    .and_then(|a| Aggregate::ALL.iter().find(|(t, _)| *t == a))
                    .map(|&(_, a)| a);
                if aggregate.is_none() {
                    self.issue(
                        &format!("{path}/aggregate"),
                        "unknown_aggregate",
                        "one of count, sum, avg, max, min",
                    );
                }
                let fact = self.measured(object.get("of"), aggregate, &format!("{path}/of"));
                if let Some(within) = object.get("within") {
                    self.window(within, &format!("{path}/within"));
                }
                if let (Some(filter), Some(fact)) = (object.get("where"), fact) {
                    self.filter(filter, fact, &format!("{path}/where"));
                }
            }
            "days_since" => {
                self.only_keys(object, path, &["days_since"]);
                self.date_field(&object["days_since"], &format!("{path}/days_since"));
            }
            "days_since_last" => {
                self.only_keys(
                    object,
                    path,
                    &["days_since_last", "where", "otherwise_since"],
                );
                let at = format!("{path}/days_since_last");
                let fact = object["days_since_last"].as_str().and_then(FactKind::parse);
                if fact.is_none() {
                    self.issue(&at, "unknown_fact", "one of orders, follow_ups, events");
                }
                if let (Some(filter), Some(fact)) = (object.get("where"), fact) {
                    self.filter(filter, fact, &format!("{path}/where"));
                }
                if let Some(field) = object.get("otherwise_since") {
                    self.date_field(field, &format!("{path}/otherwise_since"));
                }
            }
            _ => {
                self.only_keys(object, path, &["score"]);
                let at = format!("{path}/score");
                match object["score"].as_array() {
                    None => self.issue(&at, "type", "a list of weighted terms"),
                    Some(terms) if terms.is_empty() || terms.len() > MAX_TERMS => {
                        self.issue(&at, "length", format!("1 to {MAX_TERMS} terms"))
                    }
                    Some(terms) => {
                        for (i, term) in terms.iter().enumerate() {
                            self.term(term, &format!("{at}/{i}"), depth);
                        }
                    }
                }
            }
        }
    }

    fn term(&mut self, term: &Value, at: &str, depth: usize) {
        let Some(object) = term.as_object() else {
            self.issue(at, "type", "a term: {\"weight\": number, \"metric\": {…}}");
            return;
        };
        self.only_keys(object, at, &["weight", "metric"]);
        if !object.get("weight").is_some_and(Value::is_number) {
            self.issue(&format!("{at}/weight"), "type", "a number");
        }
        match object.get("metric") {
            None => self.issue(&format!("{at}/metric"), "required", "a metric"),
            Some(metric) => self.metric(metric, &format!("{at}/metric"), depth + 1),
        }
    }

    /// What an aggregate measures: a fact kind to count, or a numeric attribute otherwise.
    fn measured(
        &mut self,
        of: Option<&Value>,
        aggregate: Option<Aggregate>,
        at: &str,
    ) -> Option<FactKind> {
        let Some(of) = of.and_then(Value::as_str) else {
            self.issue(
                at,
                "required",
                "what to measure: orders, follow_ups, events, or orders.amount …",
            );
            return None;
        };
        let (fact_name, attribute) = match of.split_once('.') {
            Some((fact, attribute)) => (fact, Some(attribute)),
            None => (of, None),
        };
        let Some(fact) = FactKind::parse(fact_name) else {
            self.issue(at, "unknown_fact", "orders, follow_ups or events");
            return None;
        };
        let numeric = match (fact, attribute) {
            (_, None) => None,
            (FactKind::Orders, Some("amount")) => Some(true),
            (FactKind::Orders, Some("product_category" | "currency" | "status"))
            | (FactKind::FollowUps, Some("kind" | "stage" | "content"))
            | (FactKind::Events, Some("kind")) => Some(false),
            (FactKind::Events, Some(a))
                if a.strip_prefix("properties.").is_some_and(|p| !p.is_empty()) =>
            {
                Some(true)
            }
            _ => {
                self.issue(
                    at,
                    "unknown_attribute",
                    format!(
                        "{fact_name} has no attribute \"{}\"",
                        attribute.unwrap_or_default()
                    ),
                );
                return Some(fact);
            }
        };
        match (aggregate, numeric) {
            (Some(Aggregate::Count), Some(_)) => self.issue(
                at,
                "type",
                format!("count counts facts: name them ({fact_name})"),
            ),
            (Some(a), None) if a != Aggregate::Count => self.issue(
                at,
                "not_numeric",
                format!(
                    "{} needs a numeric attribute, e.g. orders.amount",
                    a.as_str()
                ),
            ),
            (Some(a), Some(false)) => self.issue(
                at,
                "not_numeric",
                format!("{} over {of}: not a number", a.as_str()),
            ),
            _ => {}
        }
        Some(fact)
    }

    fn window(&mut self, value: &Value, at: &str) {
        let Some(object) = value.as_object() else {
            self.issue(
                at,
                "type",
                "{\"last_days\": N} or {\"from\": date, \"to\": date}",
            );
            return;
        };
        if let Some(days) = object.get("last_days") {
            self.only_keys(object, at, &["last_days"]);
            match days.as_i64() {
                Some(n) if n >= 1 && n as u64 <= MAX_WINDOW_DAYS => {}
                Some(_) => self.issue(
                    &format!("{at}/last_days"),
                    "range",
                    format!("1 to {MAX_WINDOW_DAYS} days"),
                ),
                None => self.issue(&format!("{at}/last_days"), "type", "a whole number of days"),
            }
            return;
        }
        self.only_keys(object, at, &["from", "to"]);
        let date = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .and_then(|d| d.parse::<NaiveDate>().ok())
        };
        let (from, to) = (date("from"), date("to"));
        for (key, parsed) in [("from", from), ("to", to)] {
            if parsed.is_none() {
                self.issue(&format!("{at}/{key}"), "type", "a date (YYYY-MM-DD)");
            }
        }
        if let (Some(from), Some(to)) = (from, to) {
            let span = (to - from).num_days();
            if span < 0 {
                self.issue(&format!("{at}/to"), "range", "not before from");
            } else if span as u64 >= MAX_WINDOW_DAYS {
                self.issue(
                    &format!("{at}/to"),
                    "range",
                    format!("a window of at most {MAX_WINDOW_DAYS} days"),
                );
            }
        }
    }

    /// Long because each fact kind has its own attributes to filter on.
    fn filter(&mut self, value: &Value, fact: FactKind, at: &str) {
        let Some(object) = value.as_object() else {
            self.issue(at, "type", "an object of attribute filters");
            return;
        };
        let allowed: &[&str] = match fact {
            FactKind::Orders => &["status", "product_category", "currency"],
            FactKind::FollowUps => &["kind", "stage"],
            FactKind::Events => &["kind"],
        };
        self.only_keys(object, at, allowed);
        for (key, value) in object {
            let path = format!("{at}/{}", escape(key));
            match key.as_str() {
                "status" if !matches!(value.as_str(), Some("paid" | "refunded" | "any")) => {
                    self.issue(&path, "type", "paid, refunded or any");
                }
                "currency" if !value.as_str().is_some_and(|c| CURRENCIES.contains(&c)) => {
                    self.issue(
                        &path,
                        "unknown_currency",
                        format!("one of {}", CURRENCIES.join(", ")),
                    );
                }
                "product_category" | "kind" | "stage" => {
                    let values: Vec<(String, &Value)> = match value {
                        Value::Array(items) if !items.is_empty() && items.len() <= MAX_LIST => {
                            items
                                .iter()
                                .enumerate()
                                .map(|(i, v)| (format!("{path}/{i}"), v))
                                .collect()
                        }
                        Value::String(_) => vec![(path.clone(), value)],
                        _ => {
                            self.issue(
                                &path,
                                "type",
                                format!("a string or a list of 1 to {MAX_LIST}"),
                            );
                            Vec::new()
                        }
                    };
                    for (item_at, item) in values {
                        let Some(text) = item.as_str() else {
                            self.issue(&item_at, "type", "a string");
                            continue;
                        };
                        match (fact, key.as_str()) {
                            (FactKind::FollowUps, "kind")
                                if !crate::rules::follow_up_kind(text) =>
                            {
                                self.issue(
                                    &item_at,
                                    "unknown_kind",
                                    "call, visit, wechat, meeting or other",
                                )
                            }
                            (FactKind::FollowUps, "stage")
                                if !self.vocabulary.stages.iter().any(|s| s == text) =>
                            {
                                self.issue(
                                    &item_at,
                                    "unknown_stage",
                                    "not a project stage of the tenant",
                                )
                            }
                            (FactKind::Events, "kind") if !crate::rules::event_kind(text) => self
                                .issue(
                                    &item_at,
                                    "unknown_kind",
                                    "visit, page_view, login or custom:<name>",
                                ),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn date_field(&mut self, value: &Value, at: &str) {
        match value.as_str() {
            None => self.issue(at, "type", "a date field name"),
            Some(name) => match self.vocabulary.field(name) {
                None => self.issue(at, "unknown_field", format!("no such field \"{name}\"")),
                Some(FieldKind::Time | FieldKind::Date) => {}
                Some(_) => self.issue(at, "not_a_date", format!("\"{name}\" is not a date")),
            },
        }
    }
}
