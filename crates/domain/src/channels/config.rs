//! Checking a channel's configuration before it is saved: names, the privacy policy, the
//! default tags, the owner policy and the form.

use super::*;
use crate::access::SystemTask;

impl<'a> Channels<'a> {
    pub(super) async fn check_config(
        &self,
        txn: &DatabaseTransaction,
        config: Config<'_>,
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<()> {
        text_issue(
            "privacy_policy_version",
            config.privacy_policy_version,
            32,
            issues,
        );
        if let Some(url) = config.privacy_policy_url {
            let url = url.trim();
            if url.chars().count() > 512
                || !(url.starts_with("https://") || url.starts_with("http://"))
            {
                issues.push(FieldIssue::new(
                    "privacy_policy_url",
                    "url",
                    "must be an http(s) URL of at most 512 characters",
                ));
            }
        }
        if let (Some(start), Some(end)) = (config.starts_at, config.ends_at)
            && end <= start
        {
            issues.push(FieldIssue::new(
                "ends_at",
                "range",
                "must be after starts_at",
            ));
        }
        self.check_tags(txn, config.default_tag_ids, issues).await?;
        self.check_policy(txn, config.owner_policy, issues).await?;
        let defs = custom_fields::list(txn, self.tenant).await?;
        if config.form.len() > FORM_FIELDS_MAX {
            issues.push(FieldIssue::new(
                "form",
                "length",
                format!("at most {FORM_FIELDS_MAX} fields"),
            ));
        }
        for (i, field) in config.form.iter().enumerate() {
            if form_target(&field.key, &defs).is_none() {
                issues.push(FieldIssue::new(
                    format!("form[{i}].key"),
                    "unknown_field",
                    "must be name, phone, company, industry, region or custom_fields.<key> of a defined custom field",
                ));
            } else if config.form[..i].iter().any(|f| f.key == field.key) {
                issues.push(FieldIssue::new(
                    format!("form[{i}].key"),
                    "duplicate",
                    "the field is already on the form",
                ));
            } else if field.key == "name" && !field.required {
                issues.push(FieldIssue::new(
                    format!("form[{i}].required"),
                    "required",
                    "the name is always required",
                ));
            }
            if let Some(label) = &field.label {
                text_issue(&format!("form[{i}].label"), label, 32, issues);
            }
        }
        Ok(())
    }

    pub(super) async fn check_tags(
        &self,
        txn: &DatabaseTransaction,
        ids: &[TagId],
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<()> {
        if ids.len() > DEFAULT_TAGS_MAX {
            issues.push(FieldIssue::new(
                "default_tag_ids",
                "length",
                format!("at most {DEFAULT_TAGS_MAX} tags"),
            ));
            return Ok(());
        }
        // The same rules as tagging a customer by hand: known, active, one per exclusive group.
        Customers::system(self.db, self.tenant, SystemTask::ChannelSetup)
            .assignable_tags(txn, ids, "default_tag_ids", issues)
            .await?;
        Ok(())
    }

    pub(super) async fn check_policy<C: ConnectionTrait>(
        &self,
        conn: &C,
        policy: &OwnerPolicy,
        issues: &mut Vec<FieldIssue>,
    ) -> DomainResult<()> {
        if let OwnerPolicy::RoundRobin { staff_ids } = policy
            && (staff_ids.is_empty() || staff_ids.len() > ROUND_ROBIN_MAX)
        {
            issues.push(FieldIssue::new(
                "owner_policy.staff_ids",
                "length",
                format!("list 1 to {ROUND_ROBIN_MAX} staff members"),
            ));
            return Ok(());
        }
        let named = policy_staff(policy);
        if named.is_empty() {
            return Ok(());
        }
        let active: Vec<i64> = staff::Entity::find()
            .select_only()
            .column(staff::Column::Id)
            .filter(staff::Column::TenantId.eq(self.tenant.0))
            .filter(staff::Column::Active.eq(true))
            .filter(staff::Column::Id.is_in(named.iter().map(|(_, s)| s.0)))
            .into_tuple()
            .all(conn)
            .await?;
        for (i, (path, id)) in named.iter().enumerate() {
            if !active.contains(&id.0) {
                issues.push(FieldIssue::new(
                    path.clone(),
                    "unknown_staff",
                    "no such active staff member",
                ));
            } else if named[..i].iter().any(|(_, o)| o == id) {
                issues.push(FieldIssue::new(
                    path.clone(),
                    "duplicate",
                    "the staff member is already in the list",
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn text_issue(field: &str, value: &str, max: usize, issues: &mut Vec<FieldIssue>) {
    if let Err(issue) = checked_name(field, value, max) {
        issues.push(issue);
    }
}

pub(super) fn policy_staff(policy: &OwnerPolicy) -> Vec<(String, StaffId)> {
    match policy {
        OwnerPolicy::Fixed { staff_id } => vec![("owner_policy.staff_id".to_owned(), *staff_id)],
        OwnerPolicy::RoundRobin { staff_ids } => staff_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("owner_policy.staff_ids[{i}]"), *s))
            .collect(),
        OwnerPolicy::Pool => Vec::new(),
    }
}

/// The settings shared by create and update, checked together.
pub(super) struct Config<'c> {
    pub(super) default_tag_ids: &'c [TagId],
    pub(super) owner_policy: &'c OwnerPolicy,
    pub(super) form: &'c [FormField],
    pub(super) privacy_policy_version: &'c str,
    pub(super) privacy_policy_url: Option<&'c str>,
    pub(super) starts_at: Option<DateTime<Utc>>,
    pub(super) ends_at: Option<DateTime<Utc>>,
}
