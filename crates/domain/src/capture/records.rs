//! The staff's view of a customer's captures: each visit, the consent given, and the
//! submitted values the record did not take.

use super::*;
use crate::access::StaffActor;

/// The captures of a customer the viewer can see, newest first.
pub async fn customer_captures(
    db: &DatabaseConnection,
    staff: &StaffActor,
    id: CustomerId,
) -> DomainResult<Vec<CaptureRecord>> {
    Customers::new(db, staff).get(id).await?;
    let rows = capture::Entity::find()
        .filter(capture::Column::TenantId.eq(staff.tenant.0))
        .filter(capture::Column::CustomerId.eq(id.0))
        .order_by_desc(capture::Column::Id)
        .limit(200)
        .all(db)
        .await?;
    let names: std::collections::HashMap<ChannelId, String> = channel::Entity::find()
        .filter(channel::Column::TenantId.eq(staff.tenant.0))
        .filter(channel::Column::Id.is_in(rows.iter().map(|r| r.channel_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| CaptureRecord {
            id: r.id,
            channel_id: r.channel_id,
            channel_name: names.get(&r.channel_id).cloned().unwrap_or_default(),
            outcome: r.outcome,
            matched_by: r.matched_by,
            consent_policy_version: r.consent_policy_version,
            consented_at: r.consented_at,
            conflicts: r.conflicts.0,
            created_at: r.created_at,
        })
        .collect())
}
