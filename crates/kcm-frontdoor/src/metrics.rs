//! Request metrics: a counter and a latency histogram per front door, operation and
//! status, and the process's heap in use, rendered in the Prometheus text format.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Default)]
struct Series {
    count: AtomicU64,
    sum_micros: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

type SeriesKey = (&'static str, &'static str, u16);

/// Counters and histograms of handled requests. Recording takes a read lock and a
/// few atomic adds; a new series (first request of an operation/status) takes the
/// write lock once.
#[derive(Default)]
pub struct Metrics {
    series: RwLock<HashMap<SeriesKey, Arc<Series>>>,
    throttled: RwLock<HashMap<&'static str, Arc<AtomicU64>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Records one request.
    pub fn record(
        &self,
        door: &'static str,
        operation: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let series = entry(&self.series, (door, operation, status));
        series.count.fetch_add(1, Ordering::Relaxed);
        series
            .sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            series.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one request refused by a request-rate quota (also counted by
    /// [`Metrics::record`] under its status): AWS answers throttling with 400, like
    /// any client error, so it needs a series of its own to be seen.
    pub fn record_throttled(&self, door: &'static str) {
        entry(&self.throttled, door).fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = self.render_requests();
        let throttled = self.throttled.read().unwrap_or_else(|e| e.into_inner());
        let mut doors: Vec<_> = throttled.iter().collect();
        doors.sort_by_key(|(door, _)| **door);
        out.push_str("# HELP kcm_requests_throttled_total Requests refused by a request-rate quota, by front door.\n");
        out.push_str("# TYPE kcm_requests_throttled_total counter\n");
        for (door, count) in doors {
            let _ = writeln!(
                out,
                "kcm_requests_throttled_total{{door=\"{door}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        if let Some(bytes) = kcm_heap::in_use() {
            out.push_str("# HELP kcm_process_heap_bytes Heap the process holds: allocated and not yet freed (not the pages the allocator keeps for reuse).\n");
            out.push_str("# TYPE kcm_process_heap_bytes gauge\n");
            let _ = writeln!(out, "kcm_process_heap_bytes {bytes}");
        }
        out
    }

    fn render_requests(&self) -> String {
        let map = self.series.read().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<&SeriesKey> = map.keys().collect();
        keys.sort();
        let mut out = String::new();
        out.push_str("# HELP kcm_requests_total Requests handled, by front door, operation and HTTP status.\n");
        out.push_str("# TYPE kcm_requests_total counter\n");
        for key @ (door, op, status) in &keys {
            let s = &map[*key];
            let _ = writeln!(
                out,
                "kcm_requests_total{{door=\"{door}\",operation=\"{op}\",status=\"{status}\"}} {}",
                s.count.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP kcm_request_duration_seconds Time to handle a request.\n");
        out.push_str("# TYPE kcm_request_duration_seconds histogram\n");
        for key @ (door, op, status) in &keys {
            let s = &map[*key];
            let labels = format!("door=\"{door}\",operation=\"{op}\",status=\"{status}\"");
            let mut cumulative = 0;
            for (bound, bucket) in BUCKETS.iter().zip(&s.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "kcm_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "kcm_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "kcm_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(
                out,
                "kcm_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }
}

/// The value at `key`, made on first use: a read lock when it exists (every request
/// but the first of a series), the write lock once.
fn entry<K: Eq + std::hash::Hash, V: Default>(map: &RwLock<HashMap<K, Arc<V>>>, key: K) -> Arc<V> {
    if let Some(value) = map.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Arc::clone(value);
    }
    let mut map = map.write().unwrap_or_else(|e| e.into_inner());
    Arc::clone(map.entry(key).or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("aws", "Encrypt", 200, Duration::from_micros(300));
        m.record("aws", "Encrypt", 200, Duration::from_millis(3));
        m.record("aws", "Decrypt", 400, Duration::from_secs(2));
        let text = m.render();
        assert!(text
            .contains("kcm_requests_total{door=\"aws\",operation=\"Encrypt\",status=\"200\"} 2"));
        assert!(text.contains("operation=\"Encrypt\",status=\"200\",le=\"0.0005\"} 1"));
        assert!(text.contains("operation=\"Encrypt\",status=\"200\",le=\"0.005\"} 2"));
        assert!(text.contains("operation=\"Decrypt\",status=\"400\",le=\"1\"} 0"));
        assert!(text.contains("operation=\"Decrypt\",status=\"400\",le=\"+Inf\"} 1"));
        assert!(!text.contains("kcm_requests_throttled_total{"));
        m.record_throttled("aws");
        m.record_throttled("aws");
        assert!(m
            .render()
            .contains("kcm_requests_throttled_total{door=\"aws\"} 2"));
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(text.contains("# TYPE kcm_process_heap_bytes gauge\nkcm_process_heap_bytes "));
        }
    }
}
