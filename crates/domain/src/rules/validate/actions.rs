//! Checking a rule's actions: tags, tiers of an exclusive group, tasks, owners, messages.

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
                    let assignee_at = format!("{at}/assignee");
                    match assignee {
                        Some(Value::String(s)) if s == "owner" || s == "managers" => {}
                        Some(Value::Object(o)) if o.len() == 1 && o.contains_key("staff_id") => {
                            self.staff(o.get("staff_id"), &format!("{assignee_at}/staff_id"));
                        }
                        _ => self.issue(
                            &assignee_at,
                            "type",
                            "\"owner\", \"managers\" or {\"staff_id\": id}",
                        ),
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
                "assign_owner" => {
                    self.only_keys(object, &at, &["type", "policy"]);
                    self.owner_policy(object.get("policy"), &format!("{at}/policy"));
                }
                "notify_owner" | "notify_customer" => {
                    self.only_keys(object, &at, &["type", "message"]);
                    match object.get("message").and_then(Value::as_str) {
                        Some(m) if !m.trim().is_empty() && m.chars().count() <= MESSAGE_MAX => {}
                        _ => self.issue(
                            &format!("{at}/message"),
                            "length",
                            format!("1 to {MESSAGE_MAX} characters (what a subscribe message shows)"),
                        ),
                    }
                }
                _ => self.issue(
                    &format!("{at}/type"),
                    "unknown_action",
                    "one of add_tag, set_tier, create_task, assign_owner, notify_owner, notify_customer",
                ),
            }
        }
    }

    /// A channel's owner policy: `fixed` with an active staff member, `round_robin` with 1 to
    /// 50 distinct ones, or `pool`.
    fn owner_policy(&mut self, value: Option<&Value>, at: &str) {
        let expected = "{\"type\": \"fixed\", \"staff_id\": id}, {\"type\": \"round_robin\", \"staff_ids\": [id, …]} or {\"type\": \"pool\"}";
        let Some(object) = value.and_then(Value::as_object) else {
            self.issue(at, "type", expected);
            return;
        };
        match object.get("type").and_then(Value::as_str) {
            Some("fixed") => {
                self.only_keys(object, at, &["type", "staff_id"]);
                self.staff(object.get("staff_id"), &format!("{at}/staff_id"));
            }
            Some("round_robin") => {
                self.only_keys(object, at, &["type", "staff_ids"]);
                let list_at = format!("{at}/staff_ids");
                let Some(ids) = object.get("staff_ids").and_then(Value::as_array) else {
                    self.issue(&list_at, "type", "a list of staff ids");
                    return;
                };
                if ids.is_empty() || ids.len() > ROUND_ROBIN_MAX {
                    self.issue(
                        &list_at,
                        "length",
                        format!("1 to {ROUND_ROBIN_MAX} staff members"),
                    );
                }
                for (i, id) in ids.iter().enumerate() {
                    let id_at = format!("{list_at}/{i}");
                    if ids[..i].contains(id) {
                        self.issue(
                            &id_at,
                            "duplicate",
                            "the staff member is already in the list",
                        );
                    } else {
                        self.staff(Some(id), &id_at);
                    }
                }
            }
            Some("pool") => self.only_keys(object, at, &["type"]),
            _ => self.issue(&format!("{at}/type"), "type", expected),
        }
    }

    /// An active staff member of the tenant.
    fn staff(&mut self, value: Option<&Value>, at: &str) {
        match value.and_then(Value::as_i64) {
            None => self.issue(at, "type", "a staff id"),
            Some(id) if !self.vocabulary.staff.contains(&StaffId(id)) => {
                self.issue(at, "unknown_staff", "no such active staff member")
            }
            Some(_) => {}
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
