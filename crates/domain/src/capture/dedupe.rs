//! Who the visitor already is (unionid, else openid, else phone), and merging a submission
//! into that customer: empty fields are filled, filled ones never overwritten, and differing
//! values kept as conflicts for staff to review.

use super::*;

/// The live customer this visitor already is, by which identity it was found, and which of
/// the visitor's identities it may take. Read without a lock: the caller locks the row.
pub(super) async fn find_existing(
    db: &DatabaseConnection,
    tenant: TenantId,
    visitor: &Visitor,
    phone: Option<&PhoneNumber>,
) -> DomainResult<Option<(customer::Model, MatchedBy, FreeIdentity)>> {
    let wechat = contact::WeChatIdentity {
        openid: &visitor.openid,
        unionid: visitor.unionid.as_deref(),
    };
    let candidates = contact::holders(db, tenant, wechat, phone).await?;
    let by = |matched: MatchedBy| {
        candidates.iter().find(|c| match matched {
            MatchedBy::Unionid => visitor.unionid.is_some() && c.unionid == visitor.unionid,
            MatchedBy::Openid => c.openid.as_deref() == Some(visitor.openid.as_str()),
            MatchedBy::Phone => phone.is_some_and(|p| contact::holds_phone(c, p)),
        })
    };
    for matched in [MatchedBy::Unionid, MatchedBy::Openid, MatchedBy::Phone] {
        if let Some(found) = by(matched) {
            // Another customer may hold the visitor's other identity (a record staff linked
            // earlier); the match keeps its own then, as the unique indexes demand.
            let held_elsewhere = |held: &dyn Fn(&customer::Model) -> bool| {
                candidates.iter().any(|c| c.id != found.id && held(c))
            };
            let identity = FreeIdentity {
                openid: !held_elsewhere(&|c| c.openid.as_deref() == Some(visitor.openid.as_str())),
                unionid: visitor.unionid.is_some()
                    && !held_elsewhere(&|c| c.unionid.is_some() && c.unionid == visitor.unionid),
            };
            return Ok(Some((found.clone(), matched, identity)));
        }
    }
    Ok(None)
}

/// What a merge brings to a customer on record.
pub(super) struct Merge<'a> {
    pub(super) visitor: &'a Visitor,
    pub(super) identity: FreeIdentity,
    pub(super) checked: &'a Checked,
    /// The owner for a customer who has none yet.
    pub(super) owner: Option<StaffId>,
    pub(super) now: DateTime<Utc>,
}

/// Which of the visitor's identities no other customer holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct FreeIdentity {
    pub(super) openid: bool,
    pub(super) unionid: bool,
}

/// Fills the customer's empty fields from the submission; differing values become conflicts.
///
/// Long because it merges the submission field by field, each with its fill-or-conflict rule.
pub(super) async fn merge(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    found: customer::Model,
    with: Merge<'_>,
) -> DomainResult<Vec<Conflict>> {
    let Merge {
        visitor,
        identity,
        checked,
        owner,
        now,
    } = with;
    let mut conflicts = Vec::new();
    let mut active: customer::ActiveModel = found.clone().into();
    if checked.name != found.name {
        conflicts.push(Conflict {
            field: "name".to_owned(),
            submitted: Value::String(checked.name.clone()),
        });
    }
    let mut phone = checked.phone.clone();
    if found.phone.is_none()
        && let Some(number) = &phone
        && contact::holder_of_phone(txn, tenant, number)
            .await?
            .is_some()
    {
        // Another live customer holds the number: keep it on the capture, not the record.
        conflicts.push(Conflict {
            field: "phone".to_owned(),
            submitted: Value::String(number.as_str().to_owned()),
        });
        phone = None;
    }
    let submitted = phone.as_ref().map(|p| p.as_str().to_owned());
    if fill(&mut conflicts, "phone", &found.phone, submitted).is_some() {
        contact::set_phone(&mut active, phone.as_ref());
    }
    if let Some(value) = fill(
        &mut conflicts,
        "company",
        &found.company,
        checked.company.clone(),
    ) {
        active.company = Set(value);
    }
    if let Some(value) = fill(
        &mut conflicts,
        "industry",
        &found.industry,
        checked.industry.clone(),
    ) {
        active.industry = Set(value);
    }
    if let Some(value) = fill(
        &mut conflicts,
        "region",
        &found.region,
        checked.region.clone(),
    ) {
        active.region = Set(value);
    }
    if found.openid.is_none() && identity.openid {
        contact::set_openid(&mut active, &visitor.openid);
    }
    if found.unionid.is_none() && identity.unionid {
        contact::set_unionid(&mut active, visitor.unionid.as_deref());
    }
    if found.owner_id.is_none()
        && let Some(owner) = owner
    {
        active.owner_id = Set(Some(owner));
    }
    active.last_active_at = Set(Some(now));
    active.updated_at = Set(now);
    let id = found.id;
    customer::Entity::update_many()
        .set(active)
        .filter(customer::Column::Id.eq(id))
        .exec(txn)
        .await?;

    if !checked.custom.is_empty() {
        let have: Vec<(i64, String)> = customer_field_value::Entity::find()
            .select_only()
            .column(customer_field_value::Column::FieldId)
            .column(customer_field_value::Column::Value)
            .filter(customer_field_value::Column::CustomerId.eq(found.id))
            .order_by_asc(customer_field_value::Column::FieldId)
            .into_tuple()
            .all(txn)
            .await?;
        let mut fresh = Vec::new();
        for (def, values, raw) in &checked.custom {
            let current: Vec<&String> = have
                .iter()
                .filter(|(f, _)| *f == def.id.0)
                .map(|(_, v)| v)
                .collect();
            if current.is_empty() {
                fresh.push((def.id.0, values.clone()));
            } else {
                let mut a: Vec<&String> = current;
                let mut b: Vec<&String> = values.iter().collect();
                a.sort();
                b.sort();
                if a != b {
                    conflicts.push(Conflict {
                        field: format!("custom_fields.{}", def.key),
                        submitted: raw.clone(),
                    });
                }
            }
        }
        customers::write_field_values(txn, tenant, found.id, &fresh).await?;
    }
    Ok(conflicts)
}

/// The customer a capture lands on.
pub(super) struct Target {
    pub(super) id: i64,
}

/// The value to store for a field the record may lack: `Some` fills an empty field; a value
/// differing from a filled one is recorded as a conflict instead.
pub(super) fn fill(
    conflicts: &mut Vec<Conflict>,
    field: &str,
    current: &Option<String>,
    submitted: Option<String>,
) -> Option<Option<String>> {
    match (current, submitted) {
        (None, Some(value)) => Some(Some(value)),
        (Some(have), Some(value)) if *have != value => {
            conflicts.push(Conflict {
                field: field.to_owned(),
                submitted: Value::String(value),
            });
            None
        }
        _ => None,
    }
}
