//! Tag-filtered lists through the cache and the search index. An answer is cached under the
//! tenant's data version, which every committed change moves on, so a cached answer is never
//! stale after a write and nothing depends on deleting keys (docs/ARCHITECTURE.md,
//! "Invalidation of cached lists"). An answer not in the cache comes from the tenant's bitmap
//! index, caught up with that same version, or from SQL while the index is being built.

use std::collections::HashMap;

use scantag_domain::access::{Scope, StaffActor};
use scantag_domain::customers::{self, Viewer};
use scantag_domain::search::{self, index};
use scantag_domain::support::data_version;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::routes::customers::{CustomerView, SearchRequest, SearchResponse};
use crate::state::AppState;

/// How long a cached list page may live; entries are also unreachable as soon as the tenant's
/// data version moves on.
const SEARCH_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// The client asked not to read the cache; the answer was stored all the same.
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// What computed an answer the cache did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The tenant's bitmap index (refined in SQL for keywords, dates and free-form fields).
    Index,
    /// SQL alone: the index is being built, or is turned off.
    Sql,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Index => "index",
            Path::Sql => "sql",
        }
    }
}

/// A serialized [`SearchResponse`].
pub struct Answer {
    pub body: Vec<u8>,
    pub cache: CacheStatus,
    /// `None` for an answer from the cache.
    pub path: Option<Path>,
}

/// The total and one page of the customers `staff` sees that match `request`.
pub async fn search(
    state: &AppState,
    staff: &StaffActor,
    request: &SearchRequest,
    bypass: bool,
) -> Result<Answer, ApiError> {
    let viewer = Viewer::of(staff);
    let at = data_version::read(&state.db, viewer.tenant).await?;
    let version = at.version;
    let scope = match viewer.scope {
        Scope::Tenant => "all".to_owned(),
        Scope::Own(staff) => format!("owner{staff}"),
        Scope::Nothing => "none".to_owned(),
    };
    let fingerprint = serde_json::to_vec(request).map_err(|e| ApiError::internal(&e))?;
    let key = format!(
        "search:{}:v{version}:{scope}:{}",
        viewer.tenant,
        hex::encode(Sha256::digest(&fingerprint))
    );
    if !bypass && let Some(body) = state.cache.get(&key).await {
        return Ok(Answer {
            body,
            cache: CacheStatus::Hit,
            path: None,
        });
    }
    let cursor = request
        .cursor
        .as_deref()
        .map(search::decode_cursor)
        .transpose()?;
    let resolved = search::resolve(&state.db, viewer.tenant, &request.filter.to_filter()).await?;
    let limit = request.limit.unwrap_or(50);
    let (page, path) = match state.indexes.current(viewer.tenant, at).await? {
        Some(held) => (
            index::page(
                &state.db,
                &held,
                &viewer,
                &resolved,
                limit,
                cursor,
                index::Refine::Auto,
            )
            .await?,
            Path::Index,
        ),
        None => (
            search::page(&state.db, &viewer, &resolved, limit, cursor).await?,
            Path::Sql,
        ),
    };
    let page = customers::loaded(&state.db, viewer.tenant, page).await?;
    let response = SearchResponse {
        total: page.total,
        items: page.items.into_iter().map(CustomerView::from).collect(),
        next_cursor: page.next_cursor,
    };
    let body = serde_json::to_vec(&response).map_err(|e| ApiError::internal(&e))?;
    state.cache.set(&key, &body, SEARCH_TTL).await;
    Ok(Answer {
        body,
        cache: if bypass {
            CacheStatus::Bypass
        } else {
            CacheStatus::Miss
        },
        path: Some(path),
    })
}

/// How many customers `staff` sees carry each tag, from the index when it is ready (`None`:
/// the caller counts in SQL).
pub async fn tag_counts(
    state: &AppState,
    staff: &StaffActor,
) -> Result<Option<HashMap<i64, u64>>, ApiError> {
    let viewer = Viewer::of(staff);
    let at = data_version::read(&state.db, viewer.tenant).await?;
    Ok(state
        .indexes
        .current(viewer.tenant, at)
        .await?
        .map(|held| index::tag_counts(&held, &viewer)))
}
