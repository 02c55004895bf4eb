//! Request-rate quotas per access key and per tenant.
//!
//! Each access key and each tenant has a bucket that admits `per_second` requests a
//! second on average and up to `burst` at once. A bucket is the generic cell rate
//! algorithm (GCRA): one atomic "theoretical arrival time" per bucket, advanced by one
//! emission interval per admitted request; a request is refused when admitting it
//! would push that time more than `burst` intervals past now. It needs no timer and
//! no lock on the path of a request that finds its bucket: a read lock of the table
//! and a compare-and-swap.
//!
//! The quotas are per node: a cluster of `n` nodes behind a load balancer admits up
//! to `n` times them. They are checked once per request, after authentication (so
//! that nobody can spend another caller's quota with unsigned requests), by
//! [`crate::service::Service::admit_caller`], before any store or keystore is touched.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::authz::Principal;
use crate::error::{Error, ErrorKind, Result};
use crate::model::TenantId;

/// A request-rate quota: `per_second` on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests a second, on average (at least 1).
    pub per_second: u32,
    /// Requests admitted at once after a quiet spell (at least 1).
    pub burst: u32,
}

/// The quotas of a node. `None` leaves that dimension unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// Each access key's quota.
    pub access_key: Option<Rate>,
    /// Each tenant's quota, over all its access keys (the operator's system-admin
    /// keys belong to no tenant and have only their access key's quota).
    pub tenant: Option<Rate>,
}

/// How long a throttled caller keeps quiet in the log: the first refusal after a
/// quiet spell is logged with the count of the refusals since the previous one.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Buckets are dropped, when the table grows past this many, once they are full
/// again (their caller has been quiet for a burst's worth of time): a deleted access
/// key's bucket does not stay forever.
const PRUNE_ABOVE: usize = 10_000;

/// The quotas of a node and the buckets of the callers seen.
#[derive(Debug)]
pub struct RateLimiter {
    epoch: Instant,
    access_keys: Option<Table<String>>,
    tenants: Option<Table<TenantId>>,
}

impl RateLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            epoch: Instant::now(),
            access_keys: limits.access_key.map(Table::new),
            tenants: limits.tenant.map(Table::new),
        }
    }

    /// Admits one request of `principal`, or refuses it with
    /// [`ErrorKind::Throttled`] naming the quota it exceeded. A request the tenant's
    /// quota refuses has still used its access key's share: a caller that floods is
    /// slowed by both.
    pub fn admit(&self, principal: &Principal) -> Result<()> {
        if self.access_keys.is_none() && self.tenants.is_none() {
            // No quota (the default): not even the clock is read.
            return Ok(());
        }
        let now = self.now_ns();
        if let Some(table) = &self.access_keys {
            table
                .admit(principal.access_key_id.as_str(), now)
                .map_err(|wait| {
                    throttled("access key", &principal.access_key_id, table.rate, wait)
                })?;
        }
        if let (Some(table), Some(tenant)) = (&self.tenants, &principal.tenant_id) {
            table
                .admit(tenant, now)
                .map_err(|wait| throttled("tenant", &tenant.to_string(), table.rate, wait))?;
        }
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The refusal, logged once per quiet spell of the bucket that refused.
fn throttled(scope: &str, name: &str, rate: Rate, wait: Refusal) -> Error {
    if let Some(refused) = wait.log_now {
        tracing::warn!(
            scope,
            name,
            per_second = rate.per_second,
            burst = rate.burst,
            refused,
            "request rate quota exceeded; refusing with ThrottlingException (429) until the caller slows down"
        );
    }
    let retry_ms = wait.retry_after.as_millis().max(1);
    Error::new(
        ErrorKind::Throttled,
        format!(
            "Rate exceeded: this {scope} may make {} requests a second (bursts of {}); retry after {retry_ms} ms",
            rate.per_second, rate.burst
        ),
    )
}

/// Why a bucket refused: how long until it would admit, and whether this refusal
/// is the one to log (with the number of refusals since the last logged one).
struct Refusal {
    retry_after: Duration,
    log_now: Option<u64>,
}

/// The buckets of one dimension (access keys or tenants).
#[derive(Debug)]
struct Table<K> {
    rate: Rate,
    /// Nanoseconds between two requests at the average rate.
    interval: u64,
    /// How far ahead of now a bucket's arrival time may run: `burst` intervals.
    tolerance: u64,
    buckets: RwLock<HashMap<K, Arc<Bucket>>>,
}

#[derive(Debug, Default)]
struct Bucket {
    /// The theoretical arrival time of the next request, in nanoseconds since the
    /// limiter's epoch: each admitted request moves it one interval on.
    arrival: AtomicU64,
    /// Refusals since the last one logged.
    refused: AtomicU64,
    /// When a refusal was last logged (nanoseconds since the epoch; 0: never).
    logged_at: AtomicU64,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new(rate: Rate) -> Self {
        let per_second = u64::from(rate.per_second.max(1));
        let interval = (1_000_000_000 / per_second).max(1);
        Self {
            rate,
            interval,
            tolerance: interval.saturating_mul(u64::from(rate.burst.max(1))),
            buckets: RwLock::new(HashMap::new()),
        }
    }

    fn admit<Q>(&self, key: &Q, now: u64) -> std::result::Result<(), Refusal>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
    {
        let bucket = self.bucket(key, now);
        let mut arrival = bucket.arrival.load(Ordering::Relaxed);
        loop {
            let next = arrival.max(now).saturating_add(self.interval);
            if next - now > self.tolerance {
                return Err(self.refuse(&bucket, next - now - self.tolerance, now));
            }
            match bucket.arrival.compare_exchange_weak(
                arrival,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => arrival = current,
            }
        }
    }

    fn refuse(&self, bucket: &Bucket, wait_ns: u64, now: u64) -> Refusal {
        let refused = bucket.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let logged_at = bucket.logged_at.load(Ordering::Relaxed);
        let quiet = logged_at == 0 || now.saturating_sub(logged_at) >= nanos(WARN_INTERVAL);
        let log_now = (quiet
            && bucket
                .logged_at
                .compare_exchange(logged_at, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok())
        .then(|| {
            bucket.refused.fetch_sub(refused, Ordering::Relaxed);
            refused
        });
        Refusal {
            retry_after: Duration::from_nanos(wait_ns),
            log_now,
        }
    }

    /// The bucket of `key`, made full on first sight.
    fn bucket<Q>(&self, key: &Q, now: u64) -> Arc<Bucket>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(bucket) = read(&self.buckets).get(key) {
            return bucket.clone();
        }
        let mut buckets = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_ABOVE {
            // A bucket whose arrival time has passed is full: dropping it changes
            // nothing for its caller.
            buckets.retain(|_, b| b.arrival.load(Ordering::Relaxed) > now);
        }
        buckets.entry(key.to_owned()).or_default().clone()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn principal(key: &str, tenant: Option<u8>) -> Principal {
        Principal {
            access_key_id: key.into(),
            tenant_id: tenant.map(|n| {
                TenantId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02x}")).unwrap()
            }),
            account_id: String::new(),
            role: Role::KeyUser,
            system_scope: None,
            operations: None,
        }
    }

    fn admitted(limiter: &RateLimiter, p: &Principal, n: usize) -> usize {
        (0..n).filter(|_| limiter.admit(p).is_ok()).count()
    }

    #[test]
    fn unlimited_admits_everything() {
        let limiter = RateLimiter::new(RateLimits::default());
        assert_eq!(
            admitted(&limiter, &principal("A", Some(1)), 100_000),
            100_000
        );
    }

    #[test]
    fn a_burst_is_admitted_then_the_rest_is_refused() {
        // One a second: within this test, no interval passes.
        let limiter = RateLimiter::new(RateLimits {
            access_key: Some(Rate {
                per_second: 1,
                burst: 5,
            }),
            tenant: None,
        });
        let p = principal("A", Some(1));
        assert_eq!(admitted(&limiter, &p, 50), 5);
        let e = limiter.admit(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert!(e.message().starts_with("Rate exceeded"), "{e}");
        assert!(e.message().contains("access key"), "{e}");
        // Another access key has its own bucket.
        assert_eq!(admitted(&limiter, &principal("B", Some(1)), 50), 5);
    }

    #[test]
    fn the_tenant_quota_covers_all_its_keys_and_no_other_tenant() {
        let limiter = RateLimiter::new(RateLimits {
            access_key: None,
            tenant: Some(Rate {
                per_second: 1,
                burst: 10,
            }),
        });
        let a = admitted(&limiter, &principal("A", Some(1)), 8);
        let b = admitted(&limiter, &principal("B", Some(1)), 8);
        assert_eq!(a + b, 10);
        let e = limiter.admit(&principal("C", Some(1))).unwrap_err();
        assert!(e.message().contains("tenant"), "{e}");
        assert_eq!(admitted(&limiter, &principal("D", Some(2)), 20), 10);
        // The operator's keys belong to no tenant.
        assert_eq!(admitted(&limiter, &principal("OP", None), 100), 100);
    }

    #[test]
    fn the_rate_refills_over_time() {
        let limiter = RateLimiter::new(RateLimits {
            access_key: Some(Rate {
                per_second: 1000,
                burst: 1,
            }),
            tenant: None,
        });
        let p = principal("A", None);
        assert!(limiter.admit(&p).is_ok());
        assert!(limiter.admit(&p).is_err());
        std::thread::sleep(Duration::from_millis(5));
        assert!(limiter.admit(&p).is_ok());
    }

    #[test]
    fn concurrent_callers_get_exactly_the_burst() {
        let limiter = Arc::new(RateLimiter::new(RateLimits {
            access_key: Some(Rate {
                per_second: 1,
                burst: 1000,
            }),
            tenant: None,
        }));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || admitted(&limiter, &principal("A", None), 1000))
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }

    #[test]
    fn full_buckets_are_pruned_when_the_table_grows() {
        let limiter = RateLimiter::new(RateLimits {
            access_key: Some(Rate {
                per_second: 1_000_000_000,
                burst: 1,
            }),
            tenant: None,
        });
        for i in 0..(PRUNE_ABOVE + 10) {
            limiter.admit(&principal(&format!("K{i}"), None)).unwrap();
        }
        let table = limiter.access_keys.as_ref().unwrap();
        assert!(
            read(&table.buckets).len() < PRUNE_ABOVE,
            "full buckets are dropped"
        );
    }
}
