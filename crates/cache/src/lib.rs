//! The shared cache: Redis when a URL is configured, an in-process cache otherwise.
//!
//! Every operation is best-effort. A cache that cannot be reached behaves like an empty cache
//! (reads miss, writes are dropped, locks are granted locally), so a Redis outage degrades the
//! service to the database instead of failing requests. After a Redis error the cache stops
//! talking to Redis for a short cool-down so that every request does not pay a connect timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use moka::future::Cache as MokaCache;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long the cache stays away from Redis after a failed call.
const REDIS_COOL_DOWN: Duration = Duration::from_secs(5);

/// Why a cache could not be built or reached.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("invalid redis url: {0}")]
    InvalidUrl(String),
    #[error("redis is unreachable: {0}")]
    Unreachable(String),
}

/// Which store backs the cache, as reported by readiness checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheBackend {
    Redis,
    Memory,
}

impl CacheBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheBackend::Redis => "redis",
            CacheBackend::Memory => "memory",
        }
    }
}

/// A handle to the cache; cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    prefix: String,
    store: Store,
}

enum Store {
    Redis(RedisStore),
    Memory(MokaCache<String, Entry>),
}

struct RedisStore {
    conn: ConnectionManager,
    /// Unix milliseconds until which Redis is considered down.
    down_until_ms: AtomicU64,
}

#[derive(Clone)]
struct Entry {
    value: Arc<Vec<u8>>,
    ttl: Duration,
}

struct EntryExpiry;

impl Expiry<String, Entry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Entry,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Cache {
    /// An in-process cache holding at most `max_entries` values.
    pub fn memory(prefix: &str, max_entries: u64) -> Cache {
        let store = MokaCache::builder()
            .max_capacity(max_entries)
            .expire_after(EntryExpiry)
            .build();
        Cache {
            inner: Arc::new(Inner {
                prefix: prefix.to_owned(),
                store: Store::Memory(store),
            }),
        }
    }

    /// A Redis-backed cache. The connection is made lazily, so an unreachable server does not
    /// stop start-up; only a malformed URL is an error here.
    pub fn redis(url: &str, prefix: &str) -> Result<Cache, CacheError> {
        let client = redis::Client::open(url).map_err(|e| CacheError::InvalidUrl(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| CacheError::InvalidUrl(e.to_string()))?;
        Ok(Cache {
            inner: Arc::new(Inner {
                prefix: prefix.to_owned(),
                store: Store::Redis(RedisStore {
                    conn,
                    down_until_ms: AtomicU64::new(0),
                }),
            }),
        })
    }

    pub fn backend(&self) -> CacheBackend {
        match self.inner.store {
            Store::Redis(_) => CacheBackend::Redis,
            Store::Memory(_) => CacheBackend::Memory,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{}", self.inner.prefix, key)
    }

    /// Checks that the backing store answers.
    pub async fn ping(&self) -> Result<(), CacheError> {
        match &self.inner.store {
            Store::Memory(_) => Ok(()),
            Store::Redis(r) => {
                let mut conn = r.conn.clone();
                let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
                pong.map(|_| ()).map_err(|e| {
                    r.mark_down();
                    CacheError::Unreachable(e.to_string())
                })
            }
        }
    }

    /// The value stored under `key`, if any and if the cache can be reached.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = self.key(key);
        match &self.inner.store {
            Store::Memory(m) => m.get(&key).await.map(|e| e.value.as_ref().clone()),
            Store::Redis(r) => {
                let mut conn = r.available()?;
                let got: Result<Option<Vec<u8>>, _> = conn.get(&key).await;
                r.settle(got, "get").flatten()
            }
        }
    }

    pub async fn get_string(&self, key: &str) -> Option<String> {
        self.get(key)
            .await
            .and_then(|bytes| String::from_utf8(bytes).ok())
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        let key = self.key(key);
        match &self.inner.store {
            Store::Memory(m) => {
                let entry = Entry {
                    value: Arc::new(value.to_vec()),
                    ttl,
                };
                m.insert(key, entry).await;
            }
            Store::Redis(r) => {
                let Some(mut conn) = r.available() else {
                    return;
                };
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let res: Result<(), _> = redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut conn)
                    .await;
                r.settle(res, "set");
            }
        }
    }

    /// Removes `key`. Returns false when the cache could not be reached, so callers that
    /// depend on the removal (invalidation) can react.
    pub async fn delete(&self, key: &str) -> bool {
        let key = self.key(key);
        match &self.inner.store {
            Store::Memory(m) => {
                m.invalidate(&key).await;
                true
            }
            Store::Redis(r) => {
                let Some(mut conn) = r.available() else {
                    return false;
                };
                let res: Result<i64, _> = conn.del(&key).await;
                r.settle(res, "del").is_some()
            }
        }
    }

    /// Takes a short-lived lock named `key` if nobody holds it. Returns whether it was taken.
    /// When Redis cannot be reached the lock is granted: the callers use it to avoid duplicate
    /// work, never for correctness.
    pub async fn try_lock(&self, key: &str, ttl: Duration) -> bool {
        let key = self.key(key);
        match &self.inner.store {
            Store::Memory(m) => {
                let entry = m
                    .entry(key)
                    .or_insert_with(async move {
                        Entry {
                            value: Arc::new(Vec::new()),
                            ttl,
                        }
                    })
                    .await;
                entry.is_fresh()
            }
            Store::Redis(r) => {
                let Some(mut conn) = r.available() else {
                    return true;
                };
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let res: Result<Option<String>, _> = redis::cmd("SET")
                    .arg(&key)
                    .arg("1")
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut conn)
                    .await;
                match r.settle(res, "lock") {
                    Some(answer) => answer.is_some(),
                    None => true,
                }
            }
        }
    }

    /// Releases a lock taken with [`Cache::try_lock`].
    pub async fn unlock(&self, key: &str) {
        self.delete(key).await;
    }
}

impl RedisStore {
    /// A connection handle, unless Redis recently failed.
    fn available(&self) -> Option<ConnectionManager> {
        if now_ms() < self.down_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.conn.clone())
    }

    fn mark_down(&self) {
        let until = now_ms() + u64::try_from(REDIS_COOL_DOWN.as_millis()).unwrap_or(5_000);
        self.down_until_ms.store(until, Ordering::Relaxed);
    }

    /// Turns a Redis answer into a value, logging and starting the cool-down on failure.
    fn settle<T>(&self, result: redis::RedisResult<T>, op: &'static str) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, op, "redis call failed; serving without cache");
                self.mark_down();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_cache_round_trips_and_expires() {
        let cache = Cache::memory("t", 100);
        cache.set("a", b"1", Duration::from_millis(50)).await;
        assert_eq!(cache.get("a").await.as_deref(), Some(&b"1"[..]));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(cache.get("a").await, None);
    }

    #[tokio::test]
    async fn memory_lock_is_exclusive_until_released() {
        let cache = Cache::memory("t", 100);
        assert!(cache.try_lock("l", Duration::from_secs(5)).await);
        assert!(!cache.try_lock("l", Duration::from_secs(5)).await);
        cache.unlock("l").await;
        assert!(cache.try_lock("l", Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn unreachable_redis_behaves_as_an_empty_cache() {
        let cache = Cache::redis("redis://127.0.0.1:1/", "t").unwrap();
        cache.set("a", b"1", Duration::from_secs(5)).await;
        assert_eq!(cache.get("a").await, None);
        assert!(!cache.delete("a").await);
        assert!(cache.try_lock("l", Duration::from_secs(1)).await);
        assert!(cache.ping().await.is_err());
    }
}
