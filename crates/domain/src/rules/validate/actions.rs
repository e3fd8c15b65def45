//! Checking a rule's actions: tags, tiers of an exclusive group, tasks.

use super::*;

impl Walker<'_> {
    /// Long because each action kind checks its own operands.
    pub(super) fn actions(&mut self, value: &Value, path: &str) {
        let Some(actions) = value.as_array() else {
            self.issue(path, "type", "a list of actions");
            return;
        };
        if actions.is_empty() || actions.len() > MAX_ACTIONS {
            self.issue(path, "length", format!("1 to {MAX_ACTIONS} actions"));
        }
        for (i, action) in actions.iter().enumerate() {
            let at = format!("{path}/{i}");
            let Some(object) = action.as_object() else {
                self.issue(&at, "type", "an action object");
                continue;
            };
            let kind = object
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match kind {
                "add_tag" => {
                    self.only_keys(object, &at, &["type", "tag_id"]);
                    self.assignable(object.get("tag_id"), &format!("{at}/tag_id"));
                }
                "set_tier" => {
                    self.only_keys(object, &at, &["type", "score", "tiers"]);
                    match object.get("score") {
                        None => self.issue(&format!("{at}/score"), "required", "a metric"),
                        Some(score) => self.metric(score, &format!("{at}/score"), 1),
                    }
                    self.tiers(object.get("tiers"), &format!("{at}/tiers"));
                }
                "create_task" => {
                    self.only_keys(object, &at, &["type", "assignee", "title", "due_in_days"]);
                    let assignee = object.get("assignee");
                    let valid = match assignee {
                        Some(Value::String(s)) => s == "owner" || s == "managers",
                        Some(Value::Object(o)) => {
                            o.len() == 1 && o.get("staff_id").is_some_and(Value::is_i64)
                        }
                        _ => false,
                    };
                    if !valid {
                        self.issue(
                            &format!("{at}/assignee"),
                            "type",
                            "\"owner\", \"managers\" or {\"staff_id\": id}",
                        );
                    }
                    match object.get("title").and_then(Value::as_str).map(str::trim) {
                        Some(t) if !t.is_empty() && t.chars().count() <= TITLE_MAX => {}
                        _ => self.issue(
                            &format!("{at}/title"),
                            "length",
                            format!("1 to {TITLE_MAX} characters"),
                        ),
                    }
                    if let Some(days) = object.get("due_in_days")
                        && days.as_u64().is_none_or(|d| d > MAX_WINDOW_DAYS)
                    {
                        self.issue(
                            &format!("{at}/due_in_days"),
                            "range",
                            format!("0 to {MAX_WINDOW_DAYS} days"),
                        );
                    }
                }
                _ => self.issue(
                    &format!("{at}/type"),
                    "unknown_action",
                    "one of add_tag, set_tier, create_task",
                ),
            }
        }
    }

    fn assignable(&mut self, value: Option<&Value>, at: &str) -> Option<TagInfo> {
        let tag = self.tag(value.unwrap_or(&Value::Null), at)?;
        let info = self.vocabulary.tags.get(&tag).copied()?;
        if !info.active {
            self.issue(at, "archived", "the tag is archived and cannot be assigned");
        }
        Some(info)
    }

    fn tiers(&mut self, value: Option<&Value>, at: &str) {
        let Some(tiers) = value.and_then(Value::as_array) else {
            self.issue(at, "type", "a list of {\"min\": number, \"tag_id\": id}");
            return;
        };
        if tiers.is_empty() || tiers.len() > MAX_TERMS {
            self.issue(at, "length", format!("1 to {MAX_TERMS} tiers"));
        }
        let mut group: Option<TagGroupId> = None;
        for (i, tier) in tiers.iter().enumerate() {
            let tier_at = format!("{at}/{i}");
            let Some(object) = tier.as_object() else {
                self.issue(&tier_at, "type", "{\"min\": number, \"tag_id\": id}");
                continue;
            };
            self.only_keys(object, &tier_at, &["min", "tag_id"]);
            if !object.get("min").is_some_and(Value::is_number) {
                self.issue(&format!("{tier_at}/min"), "type", "a number");
            }
            let tag_at = format!("{tier_at}/tag_id");
            if let Some(info) = self.assignable(object.get("tag_id"), &tag_at) {
                if !info.exclusive {
                    self.issue(
                        &tag_at,
                        "not_exclusive",
                        "tier tags belong to an exclusive group",
                    );
                } else if group.is_some_and(|g| g != info.group) {
                    self.issue(
                        &tag_at,
                        "mixed_groups",
                        "every tier's tag belongs to one group",
                    );
                }
                group.get_or_insert(info.group);
            }
        }
    }
}
