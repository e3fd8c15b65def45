//! Typed identifiers, so that a staff id cannot be passed where a tenant id is expected. They
//! are also the column types of the entities (`DeriveValueType`), so a row's ids keep their
//! type from the database to the wire.

use sea_orm::DeriveValueType;
use serde::{Deserialize, Serialize};

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            DeriveValueType,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

typed_id!(
    /// An enterprise using scantag; every business row belongs to exactly one.
    TenantId
);
typed_id!(
    /// A staff member of one tenant.
    StaffId
);
typed_id!(
    /// A WeChat user known to the mini-program who is not (or not acting as) staff.
    VisitorId
);
typed_id!(
    /// A login session: one chain of rotating refresh tokens.
    SessionId
);
typed_id!(
    /// A main tag (tag group) of a tenant's tag library.
    TagGroupId
);
typed_id!(
    /// A sub tag of a tenant's tag library.
    TagId
);
typed_id!(
    /// A customer record of a tenant.
    CustomerId
);
typed_id!(
    /// A tenant-defined custom field.
    CustomFieldId
);
typed_id!(
    /// A capture channel (渠道码) of one tenant: a scene on a mini-program code.
    ChannelId
);
typed_id!(
    /// One accepted capture form.
    CaptureId
);
typed_id!(
    /// A to-do for one staff member.
    TaskId
);
typed_id!(
    /// An order a customer placed, as an ERP or a person recorded it.
    OrderId
);
typed_id!(
    /// One follow-up of a customer by a staff member (a call, a visit, a meeting …).
    FollowUpId
);
typed_id!(
    /// One activity event of a customer (a visit, a page view, a login, a custom event).
    EventId
);
typed_id!(
    /// A tagging rule of one tenant.
    RuleId
);
