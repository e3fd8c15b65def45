//! The search index: per tenant, in this process, a roaring bitmap of the customers carrying
//! each tag, of the live customers, and of each owner, source channel, project stage and
//! select-field value. A tag filter is then set algebra over a few bitmaps, its total the
//! result's cardinality and its page the result's highest ids.
//!
//! **Always current.** Before an answer the index catches up with the tenant's data version
//! the request read: the change feed (`support::data_version`, written in the transaction of
//! every change) names the customers changed since the index's version, and their current
//! state is read again. A write committed through any process is therefore seen by the next
//! request to any process. A tenant's first use builds its index in the background
//! ([`Indexes::current`] answers `None` meanwhile, and the caller answers from SQL); an index
//! whose feed was pruned, or that is too far behind, is built again the same way.
//!
//! **Bounded.** The indexes of all tenants together stay under a byte budget (the least
//! recently used go first), an index idle for longer than its setting is dropped, and
//! [`Indexes::stats`] reports what is held.
//!
//! Filters the index holds no bitmaps for (a keyword, date ranges, text, number and date custom
//! fields) refine the bitmap's candidates in SQL: by checking the candidates by primary key
//! when they are few, or by intersecting with the ids SQL finds when they are many
//! ([`Refine`]).

mod bitmaps;
mod load;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use roaring::RoaringBitmap;
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Serialize;

pub use bitmaps::TenantIndex;

use crate::access::Viewer;
use crate::kernel::error::{DomainError, DomainResult, Step};
use crate::kernel::ids::{CustomerId, TenantId};
use crate::search::{self, Page, Resolved};
use crate::support::data_version::{self, Versions};

/// More changed customers than this since an index's version and it is built again in the
/// background instead of caught up in the request.
const CATCH_UP_MAX: usize = 50_000;
/// Candidates are checked by primary key while they are at most this share of the tenant's
/// live customers (1 in `CHECK_SHARE`); beyond it the refining predicates' ids are read from
/// SQL and intersected. Measured at 1M customers on MariaDB (`make bench-search`): a check
/// costs about ten times a scanned row of the keyword's full scan.
pub const CHECK_SHARE: u64 = 10;
/// Ids per candidate check statement.
const CHECK_CHUNK: usize = 1_000;
/// How long a tenant whose build failed answers from SQL before its index is tried again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// How a process keeps its indexes.
#[derive(Debug, Clone, Copy)]
pub struct IndexSettings {
    pub enabled: bool,
    /// The bytes all tenants' indexes may take together.
    pub max_bytes: u64,
    /// An index unused this long is dropped; `None` keeps it.
    pub idle: Option<Duration>,
}

/// What a process holds, for `/readyz`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct IndexStats {
    pub enabled: bool,
    /// Tenants whose index is ready.
    pub tenants: u64,
    /// Tenants whose index is being built.
    pub building: u64,
    /// Customers the ready indexes hold.
    pub customers: u64,
    /// Bytes the ready indexes take.
    pub bytes: u64,
    pub max_bytes: u64,
}

/// How a filter's non-bitmap predicates refine the bitmap's candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refine {
    /// [`Refine::Check`] for candidates up to one in [`CHECK_SHARE`] of the live customers,
    /// else [`Refine::Intersect`].
    Auto,
    /// Check each candidate by primary key with the predicates.
    Check,
    /// Read the ids meeting the predicates and intersect them with the candidates.
    Intersect,
}

/// A tenant's ready index.
pub struct Held {
    index: RwLock<TenantIndex>,
    /// One catch-up at a time; the others wait for it and find the index current.
    catching_up: tokio::sync::Mutex<()>,
    last_used: Mutex<Instant>,
}

impl Held {
    fn new(index: TenantIndex) -> Held {
        Held {
            index: RwLock::new(index),
            catching_up: tokio::sync::Mutex::new(()),
            last_used: Mutex::new(Instant::now()),
        }
    }

    /// Bytes the index takes (counted when asked: only the budget and `/readyz` want it).
    pub fn bytes(&self) -> u64 {
        self.read(TenantIndex::bytes)
    }

    fn customers(&self) -> u64 {
        self.read(TenantIndex::customers)
    }

    /// Runs `f` on the index (never across an await).
    pub fn read<R>(&self, f: impl FnOnce(&TenantIndex) -> R) -> R {
        let guard = self.index.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Brings the index to `at.version`; `false` when the changes since its version are too
    /// many (or were pruned) to catch up with here.
    async fn catch_up(&self, db: &DatabaseConnection, at: Versions) -> DomainResult<bool> {
        let _one = self.catching_up.lock().await;
        let (tenant, from) = self.read(|ix| (ix.tenant(), ix.version()));
        if from >= at.version {
            return Ok(true);
        }
        if from < at.feed_from {
            return Ok(false);
        }
        let changed = data_version::changed_between(db, tenant, from, at.version).await?;
        if changed.len() > CATCH_UP_MAX {
            return Ok(false);
        }
        let members = load::members(db, tenant, &changed).await?;
        let changed: RoaringBitmap = changed
            .iter()
            .filter_map(|id| u32::try_from(*id).ok())
            .collect();
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        index.replace(at.version, &changed, &members);
        Ok(true)
    }
}

enum Slot {
    Building,
    Ready(Arc<Held>),
    Failed { until: Instant },
}

/// The indexes of one process.
pub struct Indexes {
    db: DatabaseConnection,
    settings: IndexSettings,
    slots: Mutex<HashMap<TenantId, Slot>>,
}

impl Indexes {
    pub fn new(db: DatabaseConnection, settings: IndexSettings) -> Arc<Indexes> {
        Arc::new(Indexes {
            db,
            settings,
            slots: Mutex::new(HashMap::new()),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tenant's index, caught up with `at` (the versions the request read), or `None`
    /// when it is not ready: a build is then under way in the background (started now if
    /// need be), and the caller answers from SQL.
    pub async fn current(
        self: &Arc<Self>,
        tenant: TenantId,
        at: Versions,
    ) -> DomainResult<Option<Arc<Held>>> {
        if !self.settings.enabled {
            return Ok(None);
        }
        let held = {
            let mut slots = self.slots();
            match slots.get(&tenant) {
                Some(Slot::Ready(held)) => Arc::clone(held),
                Some(Slot::Building) => return Ok(None),
                Some(Slot::Failed { until }) if Instant::now() < *until => return Ok(None),
                _ => {
                    slots.insert(tenant, Slot::Building);
                    drop(slots);
                    self.spawn_build(tenant, "first use");
                    return Ok(None);
                }
            }
        };
        held.touch();
        if held.catch_up(&self.db, at).await? {
            return Ok(Some(held));
        }
        // Too far behind: built again, unless another request did that already.
        let mut slots = self.slots();
        if matches!(slots.get(&tenant), Some(Slot::Ready(h)) if Arc::ptr_eq(h, &held)) {
            slots.insert(tenant, Slot::Building);
            drop(slots);
            self.spawn_build(tenant, "too far behind the change feed");
        }
        Ok(None)
    }

    fn spawn_build(self: &Arc<Self>, tenant: TenantId, why: &'static str) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let started = Instant::now();
            tracing::info!(%tenant, why, "building the search index");
            let outcome = build_now(&this.db, tenant).await;
            let mut slots = this.slots();
            match outcome {
                Ok(held) => {
                    let bytes = held.bytes();
                    tracing::info!(
                        %tenant,
                        customers = held.customers(),
                        bytes,
                        ms = started.elapsed().as_millis() as u64,
                        "search index built"
                    );
                    if Self::make_room(&mut slots, tenant, bytes, this.settings.max_bytes) {
                        slots.insert(tenant, Slot::Ready(held));
                    } else {
                        tracing::warn!(
                            %tenant,
                            bytes,
                            max_bytes = this.settings.max_bytes,
                            "the tenant's search index is larger than the index budget; its lists are answered by SQL"
                        );
                        slots.insert(
                            tenant,
                            Slot::Failed {
                                until: Instant::now() + RETRY_AFTER_FAILURE * 10,
                            },
                        );
                    }
                }
                Err(err) => {
                    tracing::warn!(%tenant, error = %err, "building the search index failed; SQL answers meanwhile");
                    slots.insert(
                        tenant,
                        Slot::Failed {
                            until: Instant::now() + RETRY_AFTER_FAILURE,
                        },
                    );
                }
            }
        });
    }

    /// Drops the least recently used other indexes until `bytes` more fit in `max`; `false`
    /// when they cannot.
    fn make_room(
        slots: &mut HashMap<TenantId, Slot>,
        tenant: TenantId,
        bytes: u64,
        max: u64,
    ) -> bool {
        if bytes > max {
            return false;
        }
        loop {
            let held: u64 = slots
                .iter()
                .filter(|(t, _)| **t != tenant)
                .filter_map(|(_, s)| match s {
                    Slot::Ready(h) => Some(h.bytes()),
                    _ => None,
                })
                .sum();
            if held + bytes <= max {
                return true;
            }
            let oldest = slots
                .iter()
                .filter(|(t, _)| **t != tenant)
                .filter_map(|(t, s)| match s {
                    Slot::Ready(h) => Some((*t, h.idle_for())),
                    _ => None,
                })
                .max_by_key(|(_, idle)| *idle)
                .map(|(t, _)| t);
            match oldest {
                Some(t) => {
                    tracing::info!(tenant = %t, "search index dropped to make room");
                    slots.remove(&t);
                }
                None => return true,
            }
        }
    }

    /// Drops the indexes unused for longer than the idle setting; how many went.
    pub fn evict_idle(&self) -> usize {
        let Some(idle) = self.settings.idle else {
            return 0;
        };
        let mut slots = self.slots();
        let before = slots.len();
        slots.retain(|tenant, slot| match slot {
            Slot::Ready(held) if held.idle_for() > idle => {
                tracing::info!(%tenant, "idle search index dropped");
                false
            }
            Slot::Failed { until } => Instant::now() < *until,
            _ => true,
        });
        before - slots.len()
    }

    pub fn stats(&self) -> IndexStats {
        let slots = self.slots();
        let mut stats = IndexStats {
            enabled: self.settings.enabled,
            tenants: 0,
            building: 0,
            customers: 0,
            bytes: 0,
            max_bytes: self.settings.max_bytes,
        };
        for slot in slots.values() {
            match slot {
                Slot::Ready(held) => {
                    stats.tenants += 1;
                    stats.bytes += held.bytes();
                    stats.customers += held.customers();
                }
                Slot::Building => stats.building += 1,
                Slot::Failed { .. } => {}
            }
        }
        stats
    }
}

/// One page of the customers `viewer` sees that match `resolved`, and the exact total, from
/// the index (refined in SQL where the filter has parts the index holds no bitmaps for).
#[tracing::instrument(skip_all, fields(tenant = %viewer.tenant))]
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    held: &Held,
    viewer: &Viewer,
    resolved: &Resolved,
    limit: u64,
    cursor: Option<i64>,
    refine: Refine,
) -> DomainResult<Page> {
    let (candidates, live) = held.read(|ix| (ix.candidates(viewer, resolved), ix.customers()));
    let result = if resolved.has_residual() {
        refined(conn, resolved, candidates, live, refine).await?
    } else {
        candidates
    };
    let (ids, more) = bitmaps::page_of(&result, limit, cursor);
    Ok(Page {
        total: result.len(),
        next_cursor: if more {
            ids.last().map(|id| search::encode_cursor(*id))
        } else {
            None
        },
        ids: ids.into_iter().map(CustomerId).collect(),
    })
}

/// The candidates that also meet the filter's non-bitmap predicates.
/// `live` is the tenant's number of live customers (what a full scan reads).
pub async fn refined<C: ConnectionTrait>(
    conn: &C,
    resolved: &Resolved,
    candidates: RoaringBitmap,
    live: u64,
    refine: Refine,
) -> DomainResult<RoaringBitmap> {
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let check = match refine {
        Refine::Auto => candidates.len().saturating_mul(CHECK_SHARE) <= live,
        Refine::Check => true,
        Refine::Intersect => false,
    };
    let mut found = RoaringBitmap::new();
    if check {
        let ids: Vec<u32> = candidates.iter().collect();
        for chunk in ids.chunks(CHECK_CHUNK) {
            let mut q = search::residual_ids(resolved);
            let chunk: Vec<i64> = chunk.iter().map(|id| i64::from(*id)).collect();
            q.and_where(
                Expr::col((Alias::new("c"), Alias::new("id")))
                    .is_in(crate::store::in_list::padded(&chunk)),
            );
            for row in conn
                .query_all(&q)
                .await
                .step("checking candidates of a filter")?
            {
                let id: i64 = row.try_get_by_index(0)?;
                found.extend(u32::try_from(id).ok());
            }
        }
        Ok(found)
    } else {
        let q = search::residual_ids(resolved);
        for row in conn
            .query_all(&q)
            .await
            .step("reading the ids a filter's other terms match")?
        {
            let id: i64 = row.try_get_by_index(0)?;
            found.extend(u32::try_from(id).ok());
        }
        Ok(found & candidates)
    }
}

/// How many customers `viewer` sees carry each tag (tags no customer carries are absent).
pub fn tag_counts(held: &Held, viewer: &Viewer) -> HashMap<i64, u64> {
    held.read(|ix| ix.tag_counts(viewer))
}

/// The bitmap part of a filter alone (no SQL), for measuring it: the candidates' count and
/// the first page of their ids.
pub fn bitmap_page(
    held: &Held,
    viewer: &Viewer,
    resolved: &Resolved,
    limit: u64,
) -> (u64, Vec<i64>) {
    let result = held.read(|ix| ix.candidates(viewer, resolved));
    let (ids, _) = bitmaps::page_of(&result, limit, None);
    (result.len(), ids)
}

/// Builds the index of `tenant` now, in this task, and catches it up with what committed
/// while it read.
pub async fn build_now(db: &DatabaseConnection, tenant: TenantId) -> DomainResult<Arc<Held>> {
    let index = load::build(db, tenant).await?;
    let held = Arc::new(Held::new(index));
    let at = data_version::read(db, tenant).await?;
    if !held.catch_up(db, at).await? {
        return Err(DomainError::Conflict(
            "the tenant changed too much while its search index was built".into(),
        ));
    }
    Ok(held)
}

#[cfg(test)]
mod tests;
