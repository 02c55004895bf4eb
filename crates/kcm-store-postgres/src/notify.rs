//! Telling every node what changed: each commit announces, with `pg_notify` in
//! its own transaction, what it may have made stale ([`Change`]); every node
//! listens on the same channel and passes the notices on to its core, which drops
//! those cache entries at once. PostgreSQL delivers a notice only if its
//! transaction commits. Notices sent while a listener was reconnecting are lost:
//! the listener then reports [`Change::Chain`], and the revocation bound covers
//! the rest.

use std::collections::BTreeSet;
use std::time::Duration;

use kcm_core::store::{Change, Write};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::broadcast;

/// The channel every node listens on.
const CHANNEL: &str = "kcm_changes";

/// Queues a notice for each distinct change `writes` make (sent at COMMIT).
pub(crate) async fn announce(conn: &mut PgConnection, writes: &[Write]) -> Result<(), sqlx::Error> {
    let notices: BTreeSet<String> = writes
        .iter()
        .filter_map(Change::of)
        .map(|c| c.encode())
        .collect();
    for notice in notices {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(notice)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Listens for notices and passes them on, reconnecting (with a pause) whenever
/// the connection is lost, for as long as anyone may subscribe.
pub(crate) async fn listen(pool: PgPool, changes: broadcast::Sender<Change>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::debug!(error = %e, "cannot listen for store changes");
                } else {
                    // Anything may have changed while no one was listening.
                    let _ = changes.send(Change::Chain);
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(notice)) => {
                                if let Some(change) = Change::decode(notice.payload()) {
                                    let _ = changes.send(change);
                                }
                            }
                            // The connection was lost; notices may have been missed.
                            Ok(None) => {
                                let _ = changes.send(Change::Chain);
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "store change feed interrupted");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot connect the store change feed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
