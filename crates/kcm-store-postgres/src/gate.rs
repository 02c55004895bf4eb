//! Failing fast while PostgreSQL is down.
//!
//! Without this, every store call made during an outage waits the pool's whole
//! acquire timeout, and a request that makes four calls takes four times that to
//! fail. Once a call finds the database unreachable (no connection could be had
//! within the acquire timeout), the gate closes for a short cooldown: calls fail
//! at once with [`StoreError::Unavailable`]. After it, one call at a time probes
//! the database; any answer from it opens the gate again. A broken connection or
//! a refused statement does not close it: the database answered.
//!
//! A call that passes holds a [`GatePass`] until it reports. A call given up while
//! it waits (its client went away, a timeout dropped its future) drops the pass
//! unreported: a probe's pass then gives the probe back, so the next call probes
//! instead of the gate staying shut until the process restarts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use kcm_core::store::StoreError;

/// How long calls fail at once after the database was found unreachable.
pub(crate) const COOLDOWN: Duration = Duration::from_millis(500);

#[derive(Default)]
struct State {
    /// Set while the database is believed unreachable: no call before this instant.
    closed_until: Option<Instant>,
    /// A call is finding out whether the database is back.
    probing: bool,
}

/// The gate in front of every store call.
#[derive(Default)]
pub(crate) struct OutageGate {
    state: Mutex<State>,
}

/// Whether a passing call is the one probing a database believed down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    /// The database is believed up.
    Open,
    /// This call probes; the others fail fast until it reports.
    Probe,
}

/// A call let through the gate, until it reports how it ended
/// ([`GatePass::report`]) or is dropped unreported (given up).
#[must_use = "a pass reports how its call ended"]
pub(crate) struct GatePass<'a> {
    gate: &'a OutageGate,
    pass: Pass,
    reported: bool,
}

impl GatePass<'_> {
    /// Whether this call is the probe.
    #[cfg(test)]
    pub(crate) fn kind(&self) -> Pass {
        self.pass
    }

    /// Reports how the call ended: `unreachable` (no connection could be had)
    /// closes the gate for [`COOLDOWN`]; anything else opens it.
    pub(crate) fn report(mut self, unreachable: bool) {
        self.reported = true;
        if self.pass == Pass::Open && !unreachable {
            return; // the common case: nothing to change, no lock taken
        }
        let mut state = self.gate.lock();
        if self.pass == Pass::Probe {
            state.probing = false;
        }
        state.closed_until = unreachable.then(|| Instant::now() + COOLDOWN);
    }
}

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        if !self.reported && self.pass == Pass::Probe {
            // The probe was given up before it learnt anything: let the next call
            // probe (the gate stays closed until one reports).
            self.gate.lock().probing = false;
        }
    }
}

impl OutageGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a call through, or refuses it at once while the database is believed
    /// down (naming `target`).
    pub(crate) fn enter(&self, target: &str) -> Result<GatePass<'_>, StoreError> {
        let mut state = self.lock();
        let pass = match state.closed_until {
            None => Pass::Open,
            Some(until) if Instant::now() < until || state.probing => {
                return Err(StoreError::Unavailable(format!(
                    "{target} is unreachable; kcm tries it again every {COOLDOWN:?}"
                )));
            }
            Some(_) => {
                state.probing = true;
                Pass::Probe
            }
        };
        Ok(GatePass {
            gate: self,
            pass,
            reported: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_on_unavailable_probes_one_at_a_time_and_reopens() {
        let gate = OutageGate::default();
        let first = gate.enter("db").unwrap();
        assert_eq!(first.kind(), Pass::Open);
        first.report(true);
        assert!(gate
            .enter("db")
            .err()
            .unwrap()
            .to_string()
            .contains("db is unreachable"));

        std::thread::sleep(COOLDOWN + Duration::from_millis(20));
        let probe = gate.enter("db").unwrap();
        assert_eq!(probe.kind(), Pass::Probe);
        assert!(gate.enter("db").is_err(), "only one probe at a time");
        probe.report(true);
        assert!(gate.enter("db").is_err(), "a failed probe closes it again");

        std::thread::sleep(COOLDOWN + Duration::from_millis(20));
        let probe = gate.enter("db").unwrap();
        assert_eq!(probe.kind(), Pass::Probe);
        probe.report(false);
        let open = gate.enter("db").unwrap();
        assert_eq!(open.kind(), Pass::Open);
        open.report(false);
        assert_eq!(gate.enter("db").unwrap().kind(), Pass::Open);
    }

    /// A probe whose caller gave up (its future dropped mid-call) must not leave
    /// the gate shut for good: the next call after it probes.
    #[test]
    fn a_probe_given_up_lets_the_next_call_probe() {
        let gate = OutageGate::default();
        gate.enter("db").unwrap().report(true);
        std::thread::sleep(COOLDOWN + Duration::from_millis(20));
        let probe = gate.enter("db").unwrap();
        assert_eq!(probe.kind(), Pass::Probe);
        drop(probe); // cancelled: never reported
        let next = gate
            .enter("db")
            .expect("the gate stays shut after a cancelled probe");
        assert_eq!(next.kind(), Pass::Probe);
        next.report(false);
        assert_eq!(gate.enter("db").unwrap().kind(), Pass::Open);
    }

    /// The same through a real future cancelled by a timeout, as a client that
    /// disconnects cancels its request.
    #[tokio::test]
    async fn a_probe_cancelled_by_a_timeout_does_not_shut_the_gate() {
        let gate = OutageGate::default();
        gate.enter("db").unwrap().report(true);
        tokio::time::sleep(COOLDOWN + Duration::from_millis(20)).await;
        let call = async {
            let pass = gate.enter("db").unwrap();
            std::future::pending::<()>().await; // a database that never answers
            pass.report(false);
        };
        assert!(tokio::time::timeout(Duration::from_millis(20), call)
            .await
            .is_err());
        let next = gate.enter("db").expect("shut after a cancelled probe");
        assert_eq!(next.kind(), Pass::Probe);
    }
}
