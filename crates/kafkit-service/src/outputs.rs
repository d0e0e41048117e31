//! The service's producers as its commits see them: flushed before every commit, and
//! checked for a delivery that failed without anyone being told.
//!
//! [`Writer::flush`] resolves once everything queued before it is acknowledged *or has
//! failed*, and says nothing of which. A failed write that its caller awaited (the
//! dead-letter and retry-topic writes of the runtime; `Producer::send*`) was told to that
//! caller, which handled it (a retry, a failure). One that nobody awaited (`Producer::queue`
//! with its future dropped, a write on the writer itself) is a lost output of a record that
//! may already be finished: the writer's failed-message counter ([`kafkit::WriterStats`]
//! `errors`) is then ahead of the failures the awaited writes were told, and no commit may
//! cover the records finished since the last one.

use kafkit::Writer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The failures told to the awaited writes of one writer, and how many such writes are
/// running now. Shared by the clones of a `Producer` (and, for the service's writer, by the
/// runtime).
#[derive(Debug, Default)]
pub(crate) struct Tracked {
    /// Deliveries that failed and whose caller was told.
    told: AtomicU64,
    /// Awaited writes started and not yet over.
    awaiting: AtomicU64,
}

/// An awaited write in progress: over when dropped.
pub(crate) struct Awaiting<'a>(&'a Tracked);

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        self.0.awaiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Tracked {
    /// Call before the write: its delivery's failure may count in the writer's counter as
    /// soon as it is queued.
    pub fn begin(&self) -> Awaiting<'_> {
        self.awaiting.fetch_add(1, Ordering::SeqCst);
        Awaiting(self)
    }
    /// The delivery awaited under `_w` failed, and its caller is told (before `_w` ends).
    pub fn told(&self, _w: &Awaiting<'_>) {
        self.told.fetch_add(1, Ordering::SeqCst);
    }
}

/// A producer the service flushes before its commits.
#[derive(Clone)]
pub(crate) struct Output {
    pub writer: Writer,
    pub tracked: Arc<Tracked>,
    /// Failed messages of the writer not told to anyone when it was added (not ours).
    base: u64,
}

/// What flushing the producers found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything queued before the flush is acknowledged.
    Acked,
    /// Not known yet (a flush timed out, or a failure may still be told to a write being
    /// awaited): this commit must wait.
    NotYet(String),
    /// An output is lost (a delivery failed that no one was told of, or the writer stopped):
    /// no commit may cover the records finished since the last one.
    Lost(String),
}

impl Output {
    pub fn new(writer: Writer, tracked: Arc<Tracked>) -> Output {
        let base = writer.stats().errors.saturating_sub(tracked.told.load(Ordering::SeqCst));
        Output { writer, tracked, base }
    }

    /// Flushes, within `limit`, and checks that no delivery failed untold.
    pub async fn flush(&self, limit: Duration) -> Flushed {
        match tokio::time::timeout(limit, self.writer.flush()).await {
            Err(_) => return Flushed::NotYet(format!("a producer did not flush within {limit:?}")),
            Ok(Err(e)) => return Flushed::Lost(format!("flushing a producer failed: {e}")),
            Ok(Ok(())) => {}
        }
        // In this order: a write whose failure counts in `failed` began before `failed` was
        // read; if no awaited write is running after that, every such one has ended, and was
        // told (`told` is raised before it ends).
        let failed = self.writer.stats().errors;
        let awaiting = self.tracked.awaiting.load(Ordering::SeqCst);
        let told = self.tracked.told.load(Ordering::SeqCst);
        let untold = failed.saturating_sub(self.base.saturating_add(told));
        match (untold, awaiting) {
            (0, _) => Flushed::Acked,
            (n, 0) => Flushed::Lost(format!("{n} message(s) written through a producer failed and no caller was told")),
            (n, _) => {
                Flushed::NotYet(format!("{n} failed message(s) of a producer not yet told to the writes awaiting them"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_awaited_write_counts_until_it_ends() {
        let t = Tracked::default();
        {
            let w = t.begin();
            assert_eq!(t.awaiting.load(Ordering::SeqCst), 1);
            t.told(&w);
        }
        assert_eq!(t.awaiting.load(Ordering::SeqCst), 0);
        assert_eq!(t.told.load(Ordering::SeqCst), 1);
    }
}
