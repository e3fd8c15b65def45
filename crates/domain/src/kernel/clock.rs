//! The time every time-dependent path reads: windows and days-since, due times, task due
//! dates, token and session expiry, the scheduler.
//!
//! Real time by default. A manual clock (for testing from outside over HTTP) starts at real
//! time, runs with it, and jumps forward when told; it never goes back, so nothing written
//! under it ever lies in its future. Each server holds its own clock and runs every request
//! and background round inside [`scope`], so code reads [`now`] without being handed a
//! clock, and several servers in one process (as in tests) keep their own time.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

tokio::task_local! {
    static CURRENT: Clock;
}

/// The current time of the clock the running task is in ([`scope`]); real time outside one.
pub fn now() -> DateTime<Utc> {
    CURRENT.try_with(Clock::now).unwrap_or_else(|_| Utc::now())
}

/// Runs `work` with `clock` as the clock [`now`] reads.
pub async fn scope<F: Future>(clock: Clock, work: F) -> F::Output {
    CURRENT.scope(clock, work).await
}

/// A server's clock.
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    manual: bool,
    /// How far the clock is ahead of real time, in milliseconds.
    ahead_ms: AtomicI64,
}

/// Why the clock was not moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("the clock is real time; only a manual clock moves")]
    NotManual,
    #[error("the clock only moves forward")]
    Backwards,
    #[error("the clock cannot move that far")]
    TooFar,
}

/// The furthest a manual clock may be moved ahead of real time (100 years).
const MAX_AHEAD: Duration = Duration::days(36_525);

impl Clock {
    /// Real time.
    pub fn real() -> Clock {
        Clock::new(false)
    }

    /// A manual clock, at real time until moved.
    pub fn manual() -> Clock {
        Clock::new(true)
    }

    fn new(manual: bool) -> Clock {
        Clock {
            inner: Arc::new(Inner {
                manual,
                ahead_ms: AtomicI64::new(0),
            }),
        }
    }

    pub fn is_manual(&self) -> bool {
        self.inner.manual
    }

    pub fn now(&self) -> DateTime<Utc> {
        let real = Utc::now();
        if !self.inner.manual {
            return real;
        }
        real + Duration::milliseconds(self.inner.ahead_ms.load(Ordering::SeqCst))
    }

    /// Moves a manual clock forward by `by`; returns the new time.
    pub fn advance(&self, by: Duration) -> Result<DateTime<Utc>, ClockError> {
        if !self.inner.manual {
            return Err(ClockError::NotManual);
        }
        if by < Duration::zero() {
            return Err(ClockError::Backwards);
        }
        let by = by.num_milliseconds();
        let max = MAX_AHEAD.num_milliseconds();
        self.inner
            .ahead_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ahead| {
                ahead.checked_add(by).filter(|a| *a <= max)
            })
            .map_err(|_| ClockError::TooFar)?;
        Ok(self.now())
    }

    /// Moves a manual clock forward to `to`; returns the new time.
    pub fn set(&self, to: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
        if !self.inner.manual {
            return Err(ClockError::NotManual);
        }
        let by = to - self.now();
        if by < Duration::zero() {
            return Err(ClockError::Backwards);
        }
        self.advance(by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_forward_only_and_only_inside_its_scope() {
        let clock = Clock::manual();
        let before = Utc::now();
        let moved = clock.advance(Duration::days(31)).unwrap();
        assert!(moved >= before + Duration::days(31));
        assert_eq!(
            clock.advance(Duration::seconds(-1)),
            Err(ClockError::Backwards)
        );
        assert_eq!(clock.set(before), Err(ClockError::Backwards));
        assert_eq!(
            clock.advance(Duration::days(40_000)),
            Err(ClockError::TooFar)
        );
        let inside = scope(clock.clone(), async { now() }).await;
        assert!(inside >= moved);
        assert!(now() < moved, "outside a scope the time is real");
        assert_eq!(
            Clock::real().advance(Duration::days(1)),
            Err(ClockError::NotManual)
        );
    }
}
