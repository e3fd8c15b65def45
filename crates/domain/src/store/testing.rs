//! Databases for the domain's own tests: SQLite in memory by default; with
//! `SCANTAG_TEST_BACKEND=mysql`, a fresh database on the server at `SCANTAG_TEST_MYSQL_URL`,
//! dropped by [`TestDb::finish`].

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, EntityTrait, Set};

use crate::access::{Role, StaffActor};
use crate::identity::tenants;
use crate::kernel::ids::TenantId;
use crate::store::db;
use crate::store::entities::staff;

pub(crate) struct TestDb {
    pub(crate) db: DatabaseConnection,
    mysql: Option<(String, String)>,
}

pub(crate) async fn database() -> TestDb {
    if std::env::var("SCANTAG_TEST_BACKEND").as_deref() == Ok("mysql") {
        let server_url = std::env::var("SCANTAG_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned());
        let server_url = server_url.trim_end_matches('/').to_owned();
        let name = format!("scantag_domain_{}", uuid::Uuid::now_v7().simple());
        let server = Database::connect(server_url.as_str())
            .await
            .expect("MySQL must be reachable at SCANTAG_TEST_MYSQL_URL");
        server
            .execute_unprepared(&format!(
                "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ))
            .await
            .expect("create the test database");
        server.close().await.ok();
        let db = db::connect(
            &format!("{server_url}/{name}"),
            8,
            Duration::from_secs(5),
            db::STATEMENT_CACHE_DEFAULT,
        )
        .await
        .expect("connect to the test database");
        db::migrate(&db).await.expect("migrate");
        TestDb {
            db,
            mysql: Some((server_url, name)),
        }
    } else {
        let db = db::connect(
            "sqlite::memory:",
            1,
            Duration::from_secs(5),
            db::STATEMENT_CACHE_DEFAULT,
        )
        .await
        .expect("open SQLite in memory");
        db::migrate(&db).await.expect("migrate");
        TestDb { db, mysql: None }
    }
}

impl TestDb {
    /// A new tenant.
    pub(crate) async fn tenant(&self, name: &str) -> TenantId {
        tenants::create(&self.db, name, None)
            .await
            .expect("create tenant")
            .id
    }

    /// A staff member of `tenant` with `role`.
    pub(crate) async fn staff(&self, tenant: TenantId, role: Role, name: &str) -> StaffActor {
        let now = Utc::now();
        let id = staff::Entity::insert(staff::ActiveModel {
            tenant_id: Set(tenant),
            openid: Set(format!("openid-{name}-{}", uuid::Uuid::now_v7().simple())),
            unionid: Set(None),
            display_name: Set(name.to_owned()),
            role: Set(role),
            active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&self.db)
        .await
        .expect("insert staff")
        .last_insert_id;
        StaffActor { tenant, id, role }
    }

    /// Closes the connection and drops a MySQL test database.
    pub(crate) async fn finish(self) {
        self.db.close().await.ok();
        if let Some((server_url, name)) = self.mysql
            && let Ok(server) = Database::connect(server_url.as_str()).await
        {
            server
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{name}`"))
                .await
                .ok();
            server.close().await.ok();
        }
    }
}
