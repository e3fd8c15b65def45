//! Reading customers back: records with their custom field values and their tags (with
//! group, colour and why each is there), in the order asked, for any service that answers
//! with customers (records, search, capture).

use super::*;

/// Loads live customers of `tenant` with their tags and custom fields, in the order of `ids`.
pub(crate) async fn load<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    ids: &[i64],
) -> DomainResult<Vec<Customer>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Three independent reads, side by side where the pool has the connections.
    let listed = crate::store::in_list::padded(ids);
    let records = customer::Entity::find()
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::DeletedAt.is_null())
        .filter(customer::Column::Id.is_in(listed.iter().copied()))
        .all(conn);
    let fields = async {
        let defs = custom_fields::list(conn, tenant).await?;
        load_field_values(conn, &defs, &listed).await
    };
    let (rows, mut fields, mut tags) = futures_util::try_join!(
        async { records.await.map_err(DomainError::from) },
        fields,
        load_tags(conn, &listed)
    )?;
    let mut by_id: HashMap<i64, customer::Model> = rows.into_iter().map(|r| (r.id.0, r)).collect();
    Ok(ids
        .iter()
        .filter_map(|id| by_id.remove(id))
        .map(|m| Customer {
            id: m.id,
            custom_fields: fields.remove(&m.id.0).unwrap_or_default(),
            tags: tags.remove(&m.id.0).unwrap_or_default(),
            name: m.name,
            phone: m.phone,
            company: m.company,
            industry: m.industry,
            region: m.region,
            owner_id: m.owner_id,
            source_channel_id: m.source_channel_id.map(|v| v.0),
            project_stage: m.project_stage,
            created_at: m.created_at,
            updated_at: m.updated_at,
            last_active_at: m.last_active_at,
            last_follow_up_at: m.last_follow_up_at,
            last_order_at: m.last_order_at,
        })
        .collect())
}

pub(crate) async fn load_tags<C: ConnectionTrait>(
    conn: &C,
    ids: &[i64],
) -> DomainResult<HashMap<i64, Vec<CustomerTag>>> {
    let (ct, t, g) = (Alias::new("ct"), Alias::new("t"), Alias::new("g"));
    let select = Query::select()
        .column((ct.clone(), Alias::new("customer_id")))
        .column((ct.clone(), Alias::new("tag_id")))
        .column((ct.clone(), Alias::new("source")))
        .column((ct.clone(), Alias::new("reason")))
        .column((ct.clone(), Alias::new("assigned_by")))
        .column((ct.clone(), Alias::new("created_at")))
        .column((ct.clone(), Alias::new("rule_id")))
        .column((ct.clone(), Alias::new("rule_version")))
        .column((ct.clone(), Alias::new("evidence")))
        .column((t.clone(), Alias::new("name")))
        .column((t.clone(), Alias::new("color")))
        .column((t.clone(), Alias::new("group_id")))
        .expr_as(
            Expr::col((g.clone(), Alias::new("name"))),
            Alias::new("group_name"),
        )
        .from_as(Alias::new("customer_tags"), ct.clone())
        .join_as(
            JoinType::InnerJoin,
            Alias::new("tags"),
            t.clone(),
            Expr::col((t.clone(), Alias::new("id"))).equals((ct.clone(), Alias::new("tag_id"))),
        )
        .join_as(
            JoinType::InnerJoin,
            Alias::new("tag_groups"),
            g.clone(),
            Expr::col((g.clone(), Alias::new("id"))).equals((t.clone(), Alias::new("group_id"))),
        )
        .and_where(Expr::col((ct.clone(), Alias::new("customer_id"))).is_in(ids.iter().copied()))
        .order_by(
            (g.clone(), Alias::new("sort_order")),
            sea_orm::sea_query::Order::Asc,
        )
        .order_by((g, Alias::new("id")), sea_orm::sea_query::Order::Asc)
        .order_by(
            (t.clone(), Alias::new("sort_order")),
            sea_orm::sea_query::Order::Asc,
        )
        .order_by((t, Alias::new("id")), sea_orm::sea_query::Order::Asc)
        .to_owned();
    let mut out: HashMap<i64, Vec<CustomerTag>> = HashMap::new();
    for row in conn.query_all(&select).await? {
        let customer: i64 = row.try_get("", "customer_id")?;
        out.entry(customer).or_default().push(CustomerTag {
            tag_id: TagId(row.try_get("", "tag_id")?),
            name: row.try_get("", "name")?,
            color: row.try_get("", "color")?,
            group_id: TagGroupId(row.try_get("", "group_id")?),
            group_name: row.try_get("", "group_name")?,
            source: row.try_get("", "source")?,
            reason: row.try_get("", "reason")?,
            assigned_by: row.try_get::<Option<i64>>("", "assigned_by")?.map(StaffId),
            assigned_at: row.try_get("", "created_at")?,
            rule_id: row.try_get::<Option<i64>>("", "rule_id")?.map(RuleId),
            rule_version: row.try_get("", "rule_version")?,
            evidence: row
                .try_get::<Option<String>>("", "evidence")?
                .and_then(|e| serde_json::from_str(&e).ok()),
        });
    }
    Ok(out)
}

/// The total and one page of the customers `viewer` sees that match `resolved`, loaded.
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    viewer: &Viewer,
    resolved: &search::Resolved,
    limit: u64,
    cursor: Option<i64>,
) -> DomainResult<CustomerPage> {
    let page = search::page(conn, viewer, resolved, limit, cursor).await?;
    loaded(conn, viewer.tenant, page).await
}

/// A page of ids with its customers loaded (by primary key, in the page's order).
pub async fn loaded<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    page: search::Page,
) -> DomainResult<CustomerPage> {
    let ids: Vec<i64> = page.ids.iter().map(|id| id.0).collect();
    Ok(CustomerPage {
        total: page.total,
        items: load(conn, tenant, &ids).await?,
        next_cursor: page.next_cursor,
    })
}

/// One page of a customer list and the exact total.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerPage {
    pub total: u64,
    pub items: Vec<Customer>,
    pub next_cursor: Option<String>,
}
