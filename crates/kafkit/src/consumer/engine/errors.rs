//! How errors of the fetch tasks and the group task reach the application (see the
//! parent module's docs): the fatal error, partition failures, the bounded queue of transient
//! errors, and whether any broker answers ([`Error::NoBrokerReachable`]).

use super::*;

/// Whether any broker answers: for [`Error::NoBrokerReachable`].
pub(super) struct Contact {
    /// When a request last got an answer (or the reader started).
    pub(super) last_ok: Instant,
    /// The last failure to reach a broker since then.
    pub(super) failing: Option<String>,
    /// When a read last returned [`Error::NoBrokerReachable`].
    pub(super) reported: Option<Instant>,
}

impl Engine {
    /// Fails every later read with `e` (or an equal [`Error::dup`]) until the reader is
    /// closed; fetching stops. The first fatal error stays.
    pub fn fail(&self, e: Error) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "the reader failed");
        let mut st = self.lock();
        st.fatal.get_or_insert(e);
        for (_, h) in st.lanes.drain() {
            h.abort();
        }
        drop(st);
        self.data.notify_waiters();
        self.wake.notify_waiters();
    }

    /// The fatal error, if the reader has one.
    pub fn fatal(&self) -> Option<Error> {
        self.lock().fatal.as_ref().map(Error::dup)
    }

    /// Queues a transient error for the application: returned by one read. An error equal
    /// to one still queued is not queued again; when [`ERROR_QUEUE`] are queued the oldest
    /// goes.
    pub fn report(&self, e: Error) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        let mut st = self.lock();
        push_bounded(&mut st.errors, e);
        drop(st);
        self.data.notify_waiters();
    }

    /// A broker answered a request.
    pub fn reached(&self) {
        let mut c = self.contact.lock().unwrap_or_else(|e| e.into_inner());
        c.last_ok = Instant::now();
        c.failing = None;
    }

    /// A request could not reach a broker (`e` is a connection-level failure): after
    /// [`ClusterConfig::retry_timeout`](crate::cluster::ClusterConfig::retry_timeout) of
    /// these and no answer, reads fail with [`Error::NoBrokerReachable`].
    ///
    /// An error code from a broker (such as COORDINATOR_NOT_AVAILABLE) is an answer: it counts
    /// as [`Engine::reached`].
    pub fn unreachable(&self, e: &Error) {
        if !is_unreachable(e) {
            if matches!(e, Error::Broker { .. }) {
                self.reached();
            }
            return;
        }
        let first = {
            let mut c = self.contact.lock().unwrap_or_else(|e| e.into_inner());
            let first = c.failing.is_none();
            c.failing = Some(e.to_string());
            first
        };
        if first {
            // Readers waiting now start counting toward NoBrokerReachable.
            self.data.notify_waiters();
        }
    }

    /// When a waiting read fails with [`Error::NoBrokerReachable`] if nothing comes first:
    /// once no broker has answered for the retry timeout, and then again each retry timeout
    /// after the last such error. `None` while brokers answer.
    pub(super) fn unreachable_at(&self) -> Option<(Instant, String)> {
        let c = self.contact.lock().unwrap_or_else(|e| e.into_inner());
        let last = c.failing.clone()?;
        let since = c.reported.map_or(c.last_ok, |r| r.max(c.last_ok));
        Some((since + self.cluster.config().retry_timeout, last))
    }

    /// A read is returning [`Error::NoBrokerReachable`] now.
    pub(super) fn reported_unreachable(&self) {
        self.contact.lock().unwrap_or_else(|e| e.into_inner()).reported = Some(Instant::now());
    }
    /// Fails partition `tp` (if still in the fetch's assignment epoch) with `err`; see
    /// `Part::failure`.
    pub(super) fn fail_partition(st: &mut State, tp: &TopicPartition, err: Error) {
        if let Some(p) = st.parts.get_mut(tp) {
            tracing::debug!(partition = %tp, error = %err, "partition failed");
            p.failure = Some(err);
            st.failed.insert(tp.clone());
        }
    }
}

/// Failures that mean no broker answered (rather than one that answered with an error).
fn is_unreachable(e: &Error) -> bool {
    matches!(
        e,
        Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::RequestTimeout { .. }
            | Error::ConnectionClosed { .. }
            | Error::NoBrokerReachable { .. }
    ) || e.error_code() == Some(ErrorCode::BrokerNotAvailable)
}

/// Queues `e` unless an equal error (same text) is queued already; drops the oldest when
/// [`ERROR_QUEUE`] are queued.
fn push_bounded(queue: &mut VecDeque<Error>, e: Error) {
    let text = e.to_string();
    if queue.iter().any(|q| q.to_string() == text) {
        return;
    }
    if queue.len() >= ERROR_QUEUE {
        queue.pop_front();
    }
    queue.push_back(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_queue_is_bounded_and_coalesces_equal_errors() {
        let mut q = VecDeque::new();
        let malformed = |i: usize| Error::Malformed { broker: "b:9092".into(), what: format!("partition {i}") };
        for _ in 0..1000 {
            push_bounded(&mut q, malformed(0));
        }
        assert_eq!(q.len(), 1, "equal errors coalesce");
        for i in 0..1000 {
            push_bounded(&mut q, malformed(i));
        }
        assert_eq!(q.len(), ERROR_QUEUE);
        assert_eq!(q.front().map(|e| e.to_string()), Some(malformed(1000 - ERROR_QUEUE).to_string()), "oldest dropped");
        assert_eq!(q.back().map(|e| e.to_string()), Some(malformed(999).to_string()));
    }
}
