//! The owner of a captured customer: the customer's own, or the one the channel's policy
//! picks; round-robin turns are taken in a statement of their own.

use super::*;

/// A staff row with what an owner needs.
#[derive(Debug, Clone)]
pub(super) struct OwnerRow {
    pub(super) id: i64,
    pub(super) display_name: String,
    pub(super) active: bool,
}

impl From<staff::Model> for OwnerRow {
    fn from(s: staff::Model) -> Self {
        OwnerRow {
            id: s.id.0,
            display_name: s.display_name,
            active: s.active,
        }
    }
}

pub(super) async fn staff_row<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: StaffId,
) -> DomainResult<Option<OwnerRow>> {
    Ok(staff::Entity::find_by_id(id)
        .filter(staff::Column::TenantId.eq(tenant.0))
        .one(db)
        .await?
        .map(OwnerRow::from))
}

/// The owner the channel's policy gives a customer without one. Round-robin deals to the
/// active members of the list in turn.
pub(super) async fn pick_owner(
    db: &DatabaseConnection,
    open: &OpenChannel,
) -> DomainResult<Option<OwnerRow>> {
    match &open.owner_policy {
        OwnerPolicy::Pool => Ok(None),
        OwnerPolicy::Fixed { staff_id } => Ok(staff_row(db, open.tenant, *staff_id)
            .await?
            .filter(|s| s.active)),
        OwnerPolicy::RoundRobin { staff_ids } => {
            let active: Vec<OwnerRow> = staff::Entity::find()
                .filter(staff::Column::TenantId.eq(open.tenant.0))
                .filter(staff::Column::Active.eq(true))
                .filter(staff::Column::Id.is_in(staff_ids.iter().map(|s| s.0)))
                .all(db)
                .await?
                .into_iter()
                .map(OwnerRow::from)
                .collect();
            let members: Vec<&OwnerRow> = staff_ids
                .iter()
                .filter_map(|id| active.iter().find(|s| s.id == id.0))
                .collect();
            if members.is_empty() {
                return Ok(None);
            }
            let turn = take_turn(db, open.model.id.0).await?;
            let len = i64::try_from(members.len()).unwrap_or(i64::MAX);
            let index = usize::try_from(turn.rem_euclid(len)).unwrap_or(0);
            Ok(members.get(index).map(|m| (*m).clone()))
        }
    }
}

/// Takes the channel's next round-robin turn and returns its number (0 for the first).
///
/// Committed on its own: no capture waits for another's transaction. A capture that fails
/// after taking its turn (it lost a race for the same person and merged instead) leaves that
/// turn unused.
pub(super) async fn take_turn(db: &DatabaseConnection, channel: i64) -> DomainResult<i64> {
    crate::store::turns::take(db, "channel_owner_turns", "channel_id", channel).await
}
