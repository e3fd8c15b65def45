//! The owner of a captured customer: the customer's own, or the one the channel's policy
//! picks; round-robin turns are taken in a statement of their own.

use super::*;

/// A staff row with what an owner needs.
#[derive(Debug, Clone)]
pub(super) struct OwnerRow {
    pub(super) id: i64,
    pub(super) display_name: String,
    pub(super) openid: String,
    pub(super) active: bool,
}

impl From<staff::Model> for OwnerRow {
    fn from(s: staff::Model) -> Self {
        OwnerRow {
            id: s.id.0,
            display_name: s.display_name,
            openid: s.openid,
            active: s.active,
        }
    }
}

pub(super) async fn staff_row(
    db: &DatabaseConnection,
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
/// One atomic increment-and-read, committed on its own: turns are handed out in order however
/// many captures run at once, and no capture waits for another's transaction. A capture that
/// fails after taking its turn (it lost a race for the same person and merged instead) leaves
/// that turn unused.
pub(super) async fn take_turn(db: &DatabaseConnection, channel: i64) -> DomainResult<i64> {
    let backend = db.get_database_backend();
    let taken: i64 = match backend {
        // MySQL has no UPDATE … RETURNING; LAST_INSERT_ID(expr) hands the new value back in
        // the statement's own reply.
        DbBackend::MySql => {
            let result = db
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    "UPDATE channel_owner_turns SET taken = LAST_INSERT_ID(taken + 1) \
                     WHERE channel_id = ?",
                    [channel.into()],
                ))
                .await?;
            i64::try_from(result.last_insert_id()).unwrap_or(0)
        }
        _ => {
            let update = Query::update()
                .table(channel_owner_turn::Entity)
                .value(
                    channel_owner_turn::Column::Taken,
                    Expr::col(channel_owner_turn::Column::Taken).add(1),
                )
                .and_where(channel_owner_turn::Column::ChannelId.eq(channel))
                .returning_col(channel_owner_turn::Column::Taken)
                .to_owned();
            let row = db.query_one(&update).await?;
            match row {
                Some(row) => row.try_get_by_index(0)?,
                None => 0,
            }
        }
    };
    Ok(taken - 1)
}
