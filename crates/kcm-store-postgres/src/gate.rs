//! Failing fast while PostgreSQL is down.
//!
//! Without this, every store call made during an outage waits the pool's whole
//! acquire timeout, and a request that makes four calls takes four times that to
//! fail. Once a call finds the database unreachable (no connection could be had
//! within the acquire timeout), the gate closes for a short cooldown: calls fail
//! at once with [`StoreError::Unavailable`]. After it, one call at a time probes
//! the database; any answer from it opens the gate again. A broken connection or
//! a refused statement does not close it: the database answered.

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

impl OutageGate {
    /// Lets a call through, or refuses it at once while the database is believed
    /// down (naming `target`).
    pub(crate) fn enter(&self, target: &str) -> Result<Pass, StoreError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(until) = state.closed_until else {
            return Ok(Pass::Open);
        };
        if Instant::now() < until || state.probing {
            return Err(StoreError::Unavailable(format!(
                "{target} is unreachable; kcm tries it again every {COOLDOWN:?}"
            )));
        }
        state.probing = true;
        Ok(Pass::Probe)
    }

    /// Reports how a call that passed ended: `unreachable` (no connection could
    /// be had) closes the gate for [`COOLDOWN`]; anything else opens it.
    pub(crate) fn report(&self, pass: Pass, unreachable: bool) {
        if pass == Pass::Open && !unreachable {
            return; // the common case: nothing to change, no lock taken
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if pass == Pass::Probe {
            state.probing = false;
        }
        if unreachable {
            state.closed_until = Some(Instant::now() + COOLDOWN);
        } else {
            state.closed_until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_on_unavailable_probes_one_at_a_time_and_reopens() {
        let gate = OutageGate::default();
        assert_eq!(gate.enter("db").unwrap(), Pass::Open);
        gate.report(Pass::Open, true);
        assert!(gate
            .enter("db")
            .unwrap_err()
            .to_string()
            .contains("db is unreachable"));

        std::thread::sleep(COOLDOWN + Duration::from_millis(20));
        assert_eq!(gate.enter("db").unwrap(), Pass::Probe);
        assert!(gate.enter("db").is_err(), "only one probe at a time");
        gate.report(Pass::Probe, true);
        assert!(gate.enter("db").is_err(), "a failed probe closes it again");

        std::thread::sleep(COOLDOWN + Duration::from_millis(20));
        assert_eq!(gate.enter("db").unwrap(), Pass::Probe);
        gate.report(Pass::Probe, false);
        assert_eq!(gate.enter("db").unwrap(), Pass::Open);
        gate.report(Pass::Open, false);
        assert_eq!(gate.enter("db").unwrap(), Pass::Open);
    }
}
