use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

use super::eval::{self, Clock, TagView};
use super::facts::{CustomerFacts, Datum, EventFact, FollowUpFact, OrderFact};
use super::validate::{self, TagInfo, Vocabulary};
use super::*;
use crate::kernel::ids::{TagGroupId, TagId};
use crate::kernel::values::{FollowUpKind, OrderStatus};

struct Tags(HashSet<TagId>);

impl TagView for Tags {
    fn has(&self, tag: TagId) -> bool {
        self.0.contains(&tag)
    }
    fn has_in(&self, _: TagGroupId) -> bool {
        false
    }
}

fn clock(now: DateTime<Utc>) -> Clock {
    Clock {
        now,
        tz: chrono_tz::Asia::Shanghai,
    }
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn order(t: DateTime<Utc>, fen: i64) -> OrderFact {
    OrderFact {
        occurred_at: t,
        amount_fen: fen,
        currency: "CNY".into(),
        product_category: None,
        status: OrderStatus::Paid,
    }
}

fn vocabulary() -> Vocabulary {
    let mut v = Vocabulary {
        stages: DEFAULT_STAGES.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    v.tags.insert(
        TagId(1),
        TagInfo {
            group: TagGroupId(1),
            exclusive: false,
            active: true,
        },
    );
    v.groups.insert(TagGroupId(1), false);
    v
}

fn condition(value: Value) -> Condition {
    let mut issues = Vec::new();
    let checked = validate::check_rule(
        &vocabulary(),
        &value,
        &json!([{"type": "add_tag", "tag_id": 1}]),
        &mut issues,
    );
    assert!(issues.is_empty(), "{issues:?}");
    checked.and_then(|c| c.condition).unwrap()
}

fn high_value() -> Condition {
    condition(json!({"all": [
        {"metric": {"aggregate": "sum", "of": "orders.amount", "within": {"last_days": 180}}, "op": "gt", "value": 500000},
        {"metric": {"aggregate": "count", "of": "orders", "within": {"last_days": 180}}, "op": "gt", "value": 3}
    ]}))
}

#[test]
fn thresholds_are_strict_and_refunds_do_not_count() {
    let now = at(2026, 12, 1, 4, 0);
    let c = high_value();
    let tags = Tags(HashSet::new());
    // Exactly 5,000.00 元 over 4 orders: not more than 5,000.
    let mut facts = CustomerFacts {
        orders: (0..4)
            .map(|i| order(now - Duration::days(i), 125_000))
            .collect(),
        ..Default::default()
    };
    assert!(!eval::evaluate(Some(&c), &facts, &tags, &clock(now)).holds);
    facts.orders[0].amount_fen += 1;
    let e = eval::evaluate(Some(&c), &facts, &tags, &clock(now));
    assert!(e.holds);
    assert!(
        e.nodes[1].text.contains("5,000.01 元 > 5,000.00 元"),
        "{}",
        e.nodes[1].text
    );
    // Exactly 3 orders is not more than 3.
    let mut three = facts.clone();
    three.orders.truncate(3);
    three.orders[0].amount_fen = 600_000;
    assert!(!eval::evaluate(Some(&c), &three, &tags, &clock(now)).holds);
    // A refunded order no longer counts.
    facts.orders[0].status = OrderStatus::Refunded;
    assert!(!eval::evaluate(Some(&c), &facts, &tags, &clock(now)).holds);
}

#[test]
fn the_next_change_is_when_the_oldest_counted_order_leaves_the_window() {
    let now = at(2026, 12, 1, 4, 0);
    let c = high_value();
    let mut facts = CustomerFacts::default();
    let oldest = now - Duration::days(170);
    facts.orders = vec![
        order(oldest, 200_000),
        order(now - Duration::days(10), 200_000),
        order(now - Duration::days(5), 200_000),
        order(now - Duration::days(1), 200_000),
    ];
    let e = eval::evaluate(Some(&c), &facts, &Tags(HashSet::new()), &clock(now));
    assert!(e.holds);
    assert_eq!(e.next_change, Some(oldest + Duration::days(180)));
    // Just after, the same facts no longer hold.
    let later = clock(oldest + Duration::days(180) + Duration::seconds(1));
    assert!(!eval::evaluate(Some(&c), &facts, &Tags(HashSet::new()), &later).holds);
}

#[test]
fn days_are_counted_in_the_tenants_timezone() {
    // 23:30 in Shanghai on 2026-11-01 is 15:30 UTC: it belongs to 1 November there.
    let visit = at(2026, 11, 1, 15, 30);
    let c = condition(
        json!({"metric": {"days_since_last": "events", "where": {"kind": "visit"}}, "op": "gte", "value": 30}),
    );
    let mut facts = CustomerFacts::default();
    facts.events.push(EventFact {
        occurred_at: visit,
        kind: "visit".into(),
        properties: Default::default(),
    });
    let tags = Tags(HashSet::new());
    // 1 December 00:00 Shanghai = 30 November 16:00 UTC: exactly 30 local days.
    let midnight = at(2026, 11, 30, 16, 0);
    let before = eval::evaluate(
        Some(&c),
        &facts,
        &tags,
        &clock(midnight - Duration::seconds(1)),
    );
    assert!(!before.holds);
    assert_eq!(before.next_change, Some(midnight));
    assert!(eval::evaluate(Some(&c), &facts, &tags, &clock(midnight)).holds);
    // Counted in UTC days it would still be 29 days at that instant.
    assert_eq!((midnight.date_naive() - visit.date_naive()).num_days(), 29);
}

#[test]
fn a_missing_fact_falls_back_to_the_named_field() {
    let now = at(2026, 12, 1, 4, 0);
    let c = condition(
        json!({"metric": {"days_since_last": "follow_ups", "otherwise_since": "created_at"}, "op": "gte", "value": 30}),
    );
    let mut facts = CustomerFacts::default();
    facts
        .fields
        .insert("created_at", Datum::Time(now - Duration::days(31)));
    let tags = Tags(HashSet::new());
    assert!(eval::evaluate(Some(&c), &facts, &tags, &clock(now)).holds);
    facts.follow_ups.push(FollowUpFact {
        occurred_at: now - Duration::days(2),
        kind: FollowUpKind::Call,
        stage: None,
    });
    assert!(!eval::evaluate(Some(&c), &facts, &tags, &clock(now)).holds);
}

#[test]
fn field_comparisons_and_tags() {
    let c = condition(json!({"any": [
        {"field": "project_stage", "op": "in", "value": ["已报价", "方案沟通中"]},
        {"all": [{"has_tag": 1}, {"not": {"field": "owner_id", "op": "is_set"}}]}
    ]}));
    let now = at(2026, 12, 1, 4, 0);
    let mut facts = CustomerFacts::default();
    let none = Tags(HashSet::new());
    assert!(!eval::evaluate(Some(&c), &facts, &none, &clock(now)).holds);
    facts
        .fields
        .insert("project_stage", Datum::Text("已报价".into()));
    let e = eval::evaluate(Some(&c), &facts, &none, &clock(now));
    assert!(e.holds);
    assert_eq!(e.nodes.len(), 6);
    assert_eq!(e.nodes[1].path, "/any/0");
    assert_eq!(
        e.next_change, None,
        "a field condition never changes by time alone"
    );
    facts.fields.clear();
    assert!(
        eval::evaluate(
            Some(&c),
            &facts,
            &Tags(HashSet::from([TagId(1)])),
            &clock(now)
        )
        .holds
    );
}

#[test]
fn every_fault_is_reported_with_its_path() {
    let v = vocabulary();
    let mut issues = Vec::new();
    let condition = json!({"all": [
        {"field": "nope", "op": "eq", "value": 1},
        {"field": "region", "op": "gt", "value": "x"},
        {"any": []},
        {"has_tag": 99},
        {"metric": {"aggregate": "sum", "of": "orders.product_category"}, "op": "gt", "value": 1},
        {"metric": {"aggregate": "count", "of": "orders", "within": {"last_days": 0}}, "op": "gt", "value": "3"},
        {"metric": {"aggregate": "count", "of": "orders", "within": {"last_days": 3651}}, "op": "gt", "value": 3},
        {"frobnicate": true}
    ]});
    let checked = validate::check_rule(
        &v,
        &condition,
        &json!([{"type": "add_tag", "tag_id": 2}]),
        &mut issues,
    );
    assert!(checked.is_none());
    let found: Vec<(String, &str)> = issues.iter().map(|i| (i.field.clone(), i.code)).collect();
    for expected in [
        ("/condition/all/0/field", "unknown_field"),
        ("/condition/all/1/op", "op_not_allowed"),
        ("/condition/all/2/any", "empty"),
        ("/condition/all/3/has_tag", "unknown_tag"),
        ("/condition/all/4/metric/of", "not_numeric"),
        ("/condition/all/5/metric/within/last_days", "range"),
        ("/condition/all/5/value", "type"),
        ("/condition/all/6/metric/within/last_days", "range"),
        ("/condition/all/7", "unknown_node"),
        ("/actions/0/tag_id", "unknown_tag"),
    ] {
        assert!(
            found
                .iter()
                .any(|(p, c)| p == expected.0 && *c == expected.1),
            "{expected:?} not in {found:?}"
        );
    }
    assert_eq!(found.len(), 10, "{found:?}");
}

#[test]
fn depth_and_size_are_bounded() {
    let v = vocabulary();
    let mut deep = json!({"has_tag": 1});
    for _ in 0..25 {
        deep = json!({"not": deep});
    }
    let mut issues = Vec::new();
    validate::check_rule(
        &v,
        &deep,
        &json!([{"type": "add_tag", "tag_id": 1}]),
        &mut issues,
    );
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].code, "too_deep");
    let wide = json!({"any": (0..250).map(|_| json!({"has_tag": 1})).collect::<Vec<_>>()});
    let mut issues = Vec::new();
    validate::check_rule(
        &v,
        &wide,
        &json!([{"type": "add_tag", "tag_id": 1}]),
        &mut issues,
    );
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].code, "too_many_nodes");
}

#[test]
fn a_circle_of_rules_is_named() {
    let rule = |id: i64, name: &str, reads: i64, makes: i64| Rule {
        id: crate::kernel::ids::RuleId(id),
        name: name.into(),
        priority: 0,
        enabled: true,
        version: 1,
        condition: Some(Condition::HasTag {
            has_tag: TagId(reads),
        }),
        actions: vec![RuleAction::AddTag {
            tag_id: TagId(makes),
        }],
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    let info = |t: TagId| {
        Some(TagInfo {
            group: TagGroupId(t.0),
            exclusive: false,
            active: true,
        })
    };
    let chain = [rule(1, "A", 10, 11), rule(2, "B", 11, 12)];
    assert_eq!(graph::order(&chain, &info).unwrap(), vec![0, 1]);
    let circle = [rule(1, "A", 10, 11), rule(2, "B", 11, 10)];
    let names = graph::order(&circle, &info).unwrap_err();
    assert_eq!(names.len(), 3);
    assert_eq!(names.first(), names.last());
}

#[test]
fn money_is_shown_in_yuan() {
    assert_eq!(eval::yuan(620_000.0), "6,200.00 元");
    assert_eq!(eval::yuan(5.0), "0.05 元");
    assert_eq!(eval::yuan(123_456_789.0), "1,234,567.89 元");
}
