//! Leaving a partition leader that stopped answering (frozen, cut off): while Produce
//! requests wait on a connection that has heard nothing for [`SILENT`], the writer refreshes
//! the metadata of their topics (asking the silent broker last) every [`SILENT`]; once a
//! partition waiting there has a new leader, the connection is closed. Its requests then fail
//! with `ConnectionClosed` and are sent again to the new leader with the same producer id,
//! epoch and sequence numbers, so the broker drops any copy already written. Without this
//! they would wait for the request timeout (30 s by default) with the new leader a few seconds
//! away. A Produce request that does time out closes its connection too (the Java client
//! closes a connection whose request timed out), failing the others waiting on it at once.

use super::sender::{Engine, Lane};
use crate::cluster::SILENT;
use crate::net::Conn;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// The writer's watch over its Produce connections.
#[derive(Default)]
pub(crate) struct Watch {
    /// The connection each lane last sent on.
    conns: HashMap<Lane, Conn>,
    /// A metadata refresh started here and not finished.
    refresh: Option<tokio::task::JoinHandle<()>>,
    last_refresh: Option<Instant>,
}

impl Watch {
    pub(crate) fn sent_on(&mut self, lane: Lane, conn: &Conn) {
        if self.conns.get(&lane).is_none_or(|c| !same(c, conn)) {
            self.conns.insert(lane, conn.clone());
        }
    }
}

fn same(a: &Conn, b: &Conn) -> bool {
    a.ptr_eq(b)
}

impl Engine {
    /// Looks at the connections with requests waiting (called every half [`SILENT`] while
    /// requests are in flight).
    pub(crate) fn watch_leaders(&mut self) {
        self.watch.conns.retain(|_, c| !c.is_closed());
        let silent: Vec<Lane> = self
            .watch
            .conns
            .iter()
            .filter(|(_, c)| c.silent_for().is_some_and(|d| d >= SILENT))
            .map(|(l, _)| *l)
            .collect();
        if silent.is_empty() {
            return;
        }
        let meta = self.shared.cluster.metadata();
        let mut topics = BTreeSet::new();
        let mut moved = BTreeSet::new();
        for (key, p) in &self.parts {
            let Some(lane) = p.lane.filter(|l| silent.contains(l)) else { continue };
            if p.inflight.is_empty() {
                continue;
            }
            topics.insert(key.0.to_string());
            if let Some(pm) = meta.partition(&key.0, key.1) {
                if pm.leader >= 0 && pm.leader != lane.0 {
                    moved.insert(lane);
                }
            }
        }
        for lane in moved {
            if let Some(c) = self.watch.conns.remove(&lane) {
                tracing::info!(
                    broker = lane.0,
                    addr = c.addr(),
                    "closing a silent produce connection: its partitions have new leaders"
                );
                c.close();
            }
        }
        let idle = self.watch.refresh.as_ref().is_none_or(|h| h.is_finished());
        let due = self.watch.last_refresh.is_none_or(|t| t.elapsed() >= SILENT);
        if !topics.is_empty() && idle && due {
            let cluster = self.shared.cluster.clone();
            let shared = self.shared.clone();
            self.watch.last_refresh = Some(Instant::now());
            self.watch.refresh = Some(tokio::spawn(async move {
                let t: Vec<&str> = topics.iter().map(String::as_str).collect();
                if let Err(e) = cluster.refresh_metadata(Some(&t)).await {
                    tracing::debug!(error = %e, "metadata refresh for a silent broker's partitions failed");
                }
                // Look again with the new metadata.
                shared.wake.notify_one();
            }));
        }
    }
}
