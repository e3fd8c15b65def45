//! The policy on its own, and as the domain services apply it against a real database.

use super::policy::{self, Action};
use super::*;
use crate::customers::{CustomerPatch, Customers, NewCustomer};
use crate::library::tags::{Dimension, NewTagGroup, TagLibrary};
use crate::store::testing;

const ACTIONS: [Action; 7] = [
    Action::CurateTagLibrary,
    Action::DefineCustomFields,
    Action::ManageChannels,
    Action::InviteStaff,
    Action::ListStaff,
    Action::ManageStaff,
    Action::ReassignCustomers,
];

fn staff(role: Role) -> StaffActor {
    StaffActor {
        tenant: TenantId(1),
        id: StaffId(7),
        role,
    }
}

#[test]
fn admins_may_do_everything_managers_all_but_tenant_administration_sales_reps_nothing() {
    for action in ACTIONS {
        assert!(
            policy::permit(&staff(Role::Admin), action).is_ok(),
            "{action:?}"
        );
        assert!(
            policy::permit(&staff(Role::Sales), action).is_err(),
            "{action:?}"
        );
        let manager = policy::permit(&staff(Role::Manager), action).is_ok();
        let administration = matches!(
            action,
            Action::DefineCustomFields | Action::InviteStaff | Action::ManageStaff
        );
        assert_eq!(manager, !administration, "{action:?}");
    }
    let refusal = policy::permit(&staff(Role::Sales), Action::CurateTagLibrary).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "this action needs the role admin or manager"
    );
}

#[test]
fn sales_reps_see_their_own_customers_the_system_all_and_visitors_none() {
    let rep = staff(Role::Sales);
    assert_eq!(
        policy::customer_scope(&Actor::Staff(rep)),
        Scope::Own(rep.id)
    );
    assert_eq!(
        policy::customer_scope(&Actor::Staff(staff(Role::Manager))),
        Scope::Tenant
    );
    let system = Actor::System {
        tenant: TenantId(1),
        task: SystemTask::ChannelSetup,
    };
    assert_eq!(policy::customer_scope(&system), Scope::Tenant);
    assert!(policy::allows(&system, Action::ReassignCustomers));
    let visitor = Actor::Visitor(VisitorId(3));
    assert_eq!(policy::customer_scope(&visitor), Scope::Nothing);
    assert!(!Scope::Nothing.covers(None));
    assert_eq!(
        policy::owner_of_new_customer(Scope::Own(rep.id), None),
        Ok(Some(rep.id))
    );
    assert_eq!(
        policy::owner_of_new_customer(Scope::Own(rep.id), Some(StaffId(8))),
        Err(Some(StaffId(8)))
    );
    assert_eq!(
        policy::owner_of_new_customer(Scope::Tenant, Some(StaffId(8))),
        Ok(Some(StaffId(8)))
    );
}

#[tokio::test]
async fn the_services_apply_the_policy_without_any_http_in_front() {
    let db = testing::database().await;
    let tenant = db.tenant("Policy").await;
    let admin = db.staff(tenant, Role::Admin, "admin").await;
    let rep = db.staff(tenant, Role::Sales, "rep").await;
    let other = db.staff(tenant, Role::Sales, "other").await;

    let refused = TagLibrary::new(&db.db, &rep)
        .create_group(NewTagGroup {
            name: "Tier".into(),
            dimension: Dimension::Value,
            exclusive: true,
            description: None,
            sort_order: 0,
        })
        .await
        .unwrap_err();
    assert!(matches!(refused, DomainError::Forbidden(_)), "{refused:?}");

    let theirs = Customers::new(&db.db, &admin)
        .create(NewCustomer {
            name: "Theirs".into(),
            owner_id: Some(other.id),
            ..Default::default()
        })
        .await
        .expect("create");
    let mine = Customers::new(&db.db, &rep)
        .create(NewCustomer {
            name: "Mine".into(),
            ..Default::default()
        })
        .await
        .expect("create");
    assert_eq!(mine.owner_id, Some(rep.id));

    let as_rep = Customers::new(&db.db, &rep);
    let hidden = as_rep.get(theirs.id).await.unwrap_err();
    assert!(matches!(hidden, DomainError::NotFound(_)), "{hidden:?}");
    let reassign = as_rep
        .update(
            mine.id,
            CustomerPatch {
                owner_id: Some(Some(other.id)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    match reassign {
        DomainError::Rejected { issues, .. } => {
            assert_eq!(issues[0].field, "owner_id");
            assert_eq!(issues[0].code, "forbidden");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    db.finish().await;
}
