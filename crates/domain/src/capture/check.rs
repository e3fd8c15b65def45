//! Checking a submission against its channel's form before anything is written: consent,
//! the standard fields, the phone number and the custom fields.

use super::*;

/// The submission after checking it against the channel's form.
pub(super) struct Checked {
    pub(super) name: String,
    pub(super) phone: Option<PhoneNumber>,
    pub(super) company: Option<String>,
    pub(super) industry: Option<String>,
    pub(super) region: Option<String>,
    /// Per custom field: the definition and the stored values.
    pub(super) custom: Vec<(CustomFieldDef, Vec<String>, Value)>,
    pub(super) policy_version: String,
}

pub(super) fn in_form<'f>(form: &'f [FormField], key: &str) -> Option<&'f FormField> {
    form.iter().find(|f| f.key == key)
}

/// Long because it checks the form field by field in the form's order, collecting every error.
pub(super) fn check(
    open: &OpenChannel,
    defs: &[CustomFieldDef],
    submission: &Submission,
) -> Result<Checked, Vec<FieldIssue>> {
    let mut issues = Vec::new();
    let policy_version = &open.model.privacy_policy_version;
    let consent = &submission.consent;
    if !consent.accepted {
        issues.push(FieldIssue::new(
            "consent.accepted",
            "must_accept",
            "the visitor must accept the privacy policy",
        ));
    } else if &consent.policy_version != policy_version {
        issues.push(FieldIssue::new(
            "consent.policy_version",
            "outdated",
            format!("the channel's privacy policy is version {policy_version}"),
        ));
    }
    let mut text = |key: &'static str, value: &Option<String>| -> Option<String> {
        let max = channels::standard_field_max(key);
        let value = value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        match (in_form(&open.form, key), &value) {
            (None, Some(_)) => {
                issues.push(FieldIssue::new(
                    key,
                    "not_in_form",
                    "this channel's form does not ask for it",
                ));
                return None;
            }
            (Some(f), None)
                if f.required && !(key == "phone" && submission.verified_phone.is_some()) =>
            {
                issues.push(FieldIssue::new(key, "required", "is required"));
            }
            _ => {}
        }
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            issues.push(FieldIssue::new(
                key,
                "length",
                format!("must be at most {max} characters"),
            ));
        }
        value
    };
    let name = text("name", &submission.name);
    let typed_phone = text("phone", &submission.phone);
    let company = text("company", &submission.company);
    let industry = text("industry", &submission.industry);
    let region = text("region", &submission.region);
    let name_checked = issues.iter().any(|i| i.field == "name");
    let name = name.filter(|_| !name_checked).and_then(|name| {
        checked_name("name", &name, customers::CUSTOMER_NAME_MAX)
            .map_err(|issue| issues.push(issue))
            .ok()
    });
    let phone = match (&submission.verified_phone, typed_phone) {
        (Some(verified), _) => match PhoneNumber::parse(verified) {
            Ok(p) => Some(p),
            Err(_) => {
                issues.push(FieldIssue::new(
                    "phone_code",
                    "phone",
                    "the verified phone number is not a mainland China mobile number",
                ));
                None
            }
        },
        (None, Some(raw)) => PhoneNumber::parse(&raw).map_err(|i| issues.push(i)).ok(),
        (None, None) => None,
    };
    let mut custom = Vec::new();
    for (key, value) in &submission.custom_fields {
        let path = format!("custom_fields.{key}");
        let Some(def) = defs.iter().find(|d| &d.key == key) else {
            issues.push(FieldIssue::new(
                path,
                "unknown_field",
                "no such custom field",
            ));
            continue;
        };
        if in_form(&open.form, &path).is_none() {
            issues.push(FieldIssue::new(
                path,
                "not_in_form",
                "this channel's form does not ask for it",
            ));
            continue;
        }
        if value.is_null() {
            continue;
        }
        match custom_fields::stored_values(def, value, false) {
            Ok(values) => custom.push((def.clone(), values, value.clone())),
            Err(issue) => issues.push(issue),
        }
    }
    for field in open.form.iter().filter(|f| f.required) {
        if let Some(key) = field.key.strip_prefix("custom_fields.")
            && submission.custom_fields.get(key).is_none_or(Value::is_null)
            && matches!(
                channels::form_target(&field.key, defs),
                Some(FormTarget::Custom(_))
            )
        {
            issues.push(FieldIssue::new(
                field.key.clone(),
                "required",
                "is required",
            ));
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Checked {
        name: name.unwrap_or_default(),
        phone,
        company,
        industry,
        region,
        custom,
        policy_version: policy_version.clone(),
    })
}
