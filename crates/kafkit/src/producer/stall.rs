//! Leaving a partition leader that stopped answering (frozen, cut off): while Produce
//! requests wait on a connection that has heard nothing for [`SILENT`], the writer refreshes
//! the metadata of their topics (asking the silent broker last) every [`SILENT`]; once a
//! partition waiting there has a new leader, the connection is closed. Its requests then fail
//! with `ConnectionClosed` and are sent again to the new leader with the same producer id,
//! epoch and sequence numbers, so the broker drops any copy already written. Without this
//! they would wait for the request timeout (30 s by default) with the new leader a few seconds
//! away. A request that does time out closes its connection (`Conn`, as the Java client
//! does), failing the others waiting on it at once.

use super::sender::{Engine, Lane, PartKey};
use crate::cluster::{Workload, SILENT};
use crate::error::Error;
use crate::net::Conn;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The writer's watch over its Produce connections.
#[derive(Default)]
pub(crate) struct Watch {
    /// The connection each lane last sent on.
    conns: HashMap<Lane, Conn>,
    /// A metadata refresh started here and not finished.
    refresh: Option<tokio::task::JoinHandle<()>>,
    last_refresh: Option<Instant>,
    /// Lanes being dialed (`None`) or whose last dial failed (when).
    dialing: Arc<Mutex<HashMap<Lane, Option<Instant>>>>,
    /// Lanes with batches waiting for their dial.
    deferred: BTreeSet<Lane>,
}

impl Watch {
    pub(crate) fn sent_on(&mut self, lane: Lane, conn: &Conn) {
        self.conns.insert(lane, conn.clone());
    }
}

impl Engine {
    /// Batches for a lane with no open connection: a task dials it, and they wait to be
    /// sent again (sequences kept, not counted as attempts; their delivery timeout runs).
    pub(crate) fn defer_for_dial(&mut self, lane: Lane, workload: Workload, batches: Vec<(PartKey, u64)>) {
        self.start_dial(lane, workload);
        self.watch.deferred.insert(lane);
        let now = Instant::now();
        let wait = now + self.shared.config.cluster.backoff.delay(0);
        let timeout = self.shared.config.delivery_timeout;
        for (key, id) in batches {
            let Some(p) = self.parts.get_mut(&key) else { continue };
            let expired = p.batches.get(&id).and_then(|b| b.first_sent).is_some_and(|t| t.elapsed() >= timeout);
            if expired {
                // The usual way: a DeliveryTimeout, and a new epoch for the gap.
                self.note_attempt(&key, id);
                let e = Error::ConnectionClosed { addr: format!("broker {}", lane.0), reason: "not connected".into() };
                self.complete(&key, id, Err(e));
                continue;
            }
            p.inflight.retain(|x| *x != id);
            if let Some(b) = p.batches.get_mut(&id) {
                b.first_sent.get_or_insert(now);
                b.not_before = wait;
            }
            // Resends stay in sequence (batch id) order.
            let pos = p.resend.iter().position(|r| *r > id).unwrap_or(p.resend.len());
            p.resend.insert(pos, id);
        }
    }

    /// Dials `lane` in a task of its own, unless that is under way or failed within the
    /// backoff.
    fn start_dial(&mut self, lane: Lane, workload: Workload) {
        let backoff = self.shared.config.cluster.backoff.delay(0);
        {
            let Ok(mut d) = self.watch.dialing.lock() else { return };
            match d.get(&lane) {
                Some(None) => return,
                Some(Some(failed)) if failed.elapsed() < backoff => return,
                _ => {}
            }
            d.insert(lane, None);
        }
        let (cluster, shared, dialing) = (self.shared.cluster.clone(), self.shared.clone(), self.watch.dialing.clone());
        tokio::spawn(async move {
            let r = cluster.broker(lane.0, workload).await;
            let failed = r.as_ref().err().map(|e| {
                tracing::debug!(broker = lane.0, error = %e, "dialing a partition leader failed");
                Instant::now()
            });
            if let Ok(mut d) = dialing.lock() {
                match failed {
                    None => d.remove(&lane),
                    Some(t) => d.insert(lane, Some(t)),
                };
            }
            if failed.is_some() {
                let _ = cluster.refresh_metadata(None).await;
            }
            shared.wake.notify_one();
        });
    }

    /// Batches that waited for a dial now done go at once.
    pub(crate) fn dials_done(&mut self) {
        if self.watch.deferred.is_empty() {
            return;
        }
        let busy: BTreeSet<Lane> = match self.watch.dialing.lock() {
            Ok(d) => d.iter().filter(|(_, v)| v.is_none()).map(|(l, _)| *l).collect(),
            Err(_) => return,
        };
        let done: Vec<Lane> = self.watch.deferred.iter().filter(|l| !busy.contains(l)).copied().collect();
        if done.is_empty() {
            return;
        }
        let now = Instant::now();
        for p in self.parts.values_mut() {
            if p.lane.is_some_and(|l| done.contains(&l)) {
                for id in &p.resend {
                    if let Some(b) = p.batches.get_mut(id).filter(|b| b.attempts == 0) {
                        b.not_before = b.not_before.min(now);
                    }
                }
            }
        }
        for l in done {
            self.watch.deferred.remove(&l);
        }
    }

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
