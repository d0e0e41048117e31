//! The fetch tasks: one supervisor, and per partition leader up to
//! `FetchSettings::concurrency` tasks that fetch its partitions and hand the results over.

use super::*;

pub(super) struct Claim {
    pub(super) tp: TopicPartition,
    pub(super) topic_id: Uuid,
    pub(super) epoch: u64,
    pub(super) offset: i64,
    pub(super) leader_epoch: i32,
}

/// A fetched partition's high watermark, and the offset its lag is measured to (see
/// `Part::end`).
#[derive(Clone, Copy)]
pub(crate) struct Ends {
    pub(super) high_watermark: i64,
    pub(super) end: i64,
}

impl Ends {
    /// The ends of a fetched partition (`tp`, from broker `addr`).
    ///
    /// # Errors
    /// [`Error::Malformed`] for a high watermark or last stable offset below -1 (unknown):
    /// lag is measured from them.
    pub(crate) fn of(
        p: &kafkit_protocol::messages::fetch_response::PartitionData,
        isolation: IsolationLevel,
        addr: &str,
        tp: &impl std::fmt::Display,
    ) -> Result<Ends> {
        if p.high_watermark < -1 || p.last_stable_offset < -1 {
            return Err(Error::Malformed {
                broker: addr.to_string(),
                what: format!(
                    "{tp}: high watermark {} or last stable offset {} is negative",
                    p.high_watermark, p.last_stable_offset
                ),
            });
        }
        // Fetch v4+ carries the last stable offset; -1 before.
        let stable = isolation == IsolationLevel::ReadCommitted && p.last_stable_offset >= 0;
        Ok(Ends { high_watermark: p.high_watermark, end: if stable { p.last_stable_offset } else { p.high_watermark } })
    }
}

/// What one partition's part of a fetch came to.
pub(super) enum Outcome {
    /// The partition's batches, not decoded yet, its high watermark and lag end, whether
    /// its fetch position was already moved past them (see `Engine::advance`), and the
    /// response they are in.
    Data(Batches, Ends, bool, Option<Response>),
    /// No records, taken in at once by `Engine::advance` (its high watermark noted, its claim
    /// released): nothing to hand over.
    Empty,
    /// OFFSET_OUT_OF_RANGE: where to continue, or the error under [`OffsetReset::Fail`].
    Reset(Result<i64>),
    Error(Error),
}

/// Starts a fetch task for every partition leader that has none, and refreshes metadata
/// while a partition has no leader.
pub(super) async fn supervise(engine: std::sync::Weak<Engine>) {
    loop {
        let Some(e) = engine.upgrade() else { return };
        if e.is_closed() || e.fatal().is_some() {
            return;
        }
        let leaders = e.leaders();
        let missing: Vec<&TopicPartition> = leaders.iter().filter(|(_, l)| *l < 0).map(|(tp, _)| tp).collect();
        if !missing.is_empty() {
            let mut topics: Vec<&str> = missing.iter().map(|tp| tp.topic.as_str()).collect();
            topics.sort_unstable();
            topics.dedup();
            match e.cluster.refresh_metadata(Some(&topics)).await {
                Ok(_) => e.reached(),
                Err(err) => {
                    e.unreachable(&err);
                    tracing::debug!(error = %err, "metadata refresh for leaderless partitions failed");
                }
            }
        }
        {
            let mut brokers: Vec<i32> = leaders.iter().map(|(_, l)| *l).filter(|l| *l >= 0).collect();
            brokers.sort_unstable();
            brokers.dedup();
            let mut st = e.lock();
            st.lanes.retain(|_, h| !h.is_finished());
            for broker in brokers {
                let led = leaders.iter().filter(|(_, l)| *l == broker).count();
                for slot in 0..e.lanes(led) {
                    st.lanes
                        .entry((broker, slot))
                        .or_insert_with(|| tokio::spawn(lane(Arc::downgrade(&e), broker, slot)).abort_handle());
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(250), e.wake.notified()).await;
    }
}

/// Fetches, over and over, a share of the partitions that `broker` leads (fetch task `slot`
/// of that broker); ends when the slot is no longer needed.
///
/// Pipelined: a fetch's data is handed over (decoded, as the budget allows) while the next
/// fetch, which starts where the headers of that data end, is in flight.
async fn lane(engine: std::sync::Weak<Engine>, broker: i32, slot: usize) {
    let mut attempt = 0u32;
    let mut backlog: Option<(Vec<Claim>, Vec<Outcome>)> = None;
    // This task's fetch session with the broker (KIP-227), and whether the last fetch left a
    // partition with records to read empty-handed (the response was full): the broker fills
    // a session's response in the session's order, which a session keeps, so the next fetch
    // goes without the session, its partitions served longest ago first (as `claim` orders
    // them), and no partition starves behind another.
    let mut session = crate::fetch::FetchSession::default();
    let mut starved = false;
    loop {
        let Some(e) = engine.upgrade() else { return };
        let wake = e.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let Some(claims) = e.claim(broker, slot) else {
            // No longer needed: hand over what is left first.
            if let Some((c, o)) = backlog.take() {
                deliver(&e, slot, c, o).await;
            }
            return;
        };
        if claims.is_empty() {
            if let Some((c, o)) = backlog.take() {
                deliver(&e, slot, c, o).await;
                continue;
            }
            if e.is_closed() {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), wake).await;
            continue;
        }
        let previous = backlog.take();
        let handed = async {
            if let Some((c, o)) = previous {
                deliver(&e, slot, c, o).await;
            }
        };
        let in_session = if starved { None } else { Some(&mut session) };
        let (ask, reserve) = e.fetch_bytes();
        let fetch = async {
            // The response's budget, before it is sent: waiting here (while the previous
            // response is handed over) holds fetching back while the application has not read
            // enough.
            let response = e.budget.clone().acquire_many_owned(reserve).await.ok();
            let fetch = fetch_claims(&e, broker, slot, &claims, in_session, ask, response);
            unless_moved(&e, broker, &claims, fetch).await
        };
        let (fetched, ()) = tokio::join!(fetch, handed);
        match fetched {
            None => {
                // Its partitions have another leader: they are fetched from there now.
                e.unclaim(&claims);
                e.wake.notify_waiters();
            }
            Some(Ok(mut outcomes)) => {
                attempt = 0;
                starved = claims.iter().zip(&outcomes).any(
                    |(c, o)| matches!(o, Outcome::Data(b, ends, ..) if b.next_offset().is_none() && ends.end > c.offset),
                );
                e.reached();
                e.advance(slot, &claims, &mut outcomes);
                backlog = Some((claims, outcomes));
            }
            Some(Err(err)) => {
                e.unclaim(&claims);
                e.counters.errors.fetch_add(1, Ordering::Relaxed);
                let backoff = e.cluster.config().backoff.delay(attempt);
                attempt += 1;
                e.unreachable(&err);
                if matches!(err, Error::Decode { .. } | Error::Malformed { .. }) {
                    // The connection is closed; another may bring sound data.
                    e.report(err);
                } else if !err.is_retriable() {
                    e.fail(err);
                    return;
                } else {
                    tracing::debug!(broker, error = %err, "fetch failed; retrying");
                }
                tokio::time::sleep(backoff).await;
                match e.cluster.refresh_metadata(None).await {
                    Ok(_) => e.reached(),
                    Err(err) => e.unreachable(&err),
                }
            }
        }
    }
}

/// Runs `fetch` (to `broker`, of `claims`). Once it has waited `max_wait` and [`SILENT`]
/// more for its answer, the metadata of the claimed topics is refreshed every [`SILENT`], and
/// the fetch is given up (`None`) as soon as one of its partitions has another leader: a
/// frozen or cut-off leader holds back the partitions it led for about a second after the
/// metadata moves them, not for the request timeout. The refresh asks the brokers that have
/// been answering first (a silent fetch counts against its broker), and a fetch given up
/// only reads, so nothing is lost by dropping it (its late answer is discarded).
async fn unless_moved(
    e: &Engine,
    broker: i32,
    claims: &[Claim],
    fetch: impl std::future::Future<Output = Result<Vec<Outcome>>>,
) -> Option<Result<Vec<Outcome>>> {
    tokio::pin!(fetch);
    tokio::select! {
        r = &mut fetch => return Some(r),
        () = tokio::time::sleep(e.settings.max_wait + SILENT) => {}
    }
    let mut topics: Vec<&str> = claims.iter().map(|c| c.tp.topic.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    loop {
        let moved = async {
            if let Err(err) = e.cluster.refresh_metadata(Some(&topics)).await {
                tracing::debug!(broker, error = %err, "metadata refresh for an overdue fetch failed");
            }
            let meta = e.cluster.metadata();
            claims.iter().any(|c| meta.partition(&c.tp.topic, c.tp.partition).is_some_and(|p| p.leader != broker))
        };
        tokio::select! {
            r = &mut fetch => return Some(r),
            moved = moved => if moved {
                tracing::info!(broker, "a fetch went unanswered and its partitions have another leader now; leaving it");
                return None;
            },
        }
        tokio::select! {
            r = &mut fetch => return Some(r),
            () = tokio::time::sleep(SILENT) => {}
        }
    }
}

async fn fetch_claims(
    e: &Engine,
    broker: i32,
    slot: usize,
    claims: &[Claim],
    session: Option<&mut crate::fetch::FetchSession>,
    max_bytes: i32,
    response: Option<OwnedSemaphorePermit>,
) -> Result<Vec<Outcome>> {
    let workload = match slot {
        0 => Workload::Fetch,
        n => Workload::FetchLane(n.min(u16::MAX as usize) as u16),
    };
    let conn = e.cluster.broker(broker, workload).await?;
    let s = &e.settings;
    // A long poll is not silence (see `Cluster::silence`).
    conn.set_hold(s.max_wait);
    let spots: Vec<Spot<'_>> = claims
        .iter()
        .map(|c| Spot {
            topic: &c.tp.topic,
            topic_id: c.topic_id,
            partition: c.tp.partition,
            leader_epoch: c.leader_epoch,
            isolation: s.isolation,
        })
        .collect();
    let parts: Vec<(&Spot<'_>, i64)> = spots.iter().zip(claims).map(|(s, c)| (s, c.offset)).collect();
    let limits = Limits { min_bytes: s.min_bytes, max_bytes, partition_max_bytes: s.max_bytes, max_wait: s.max_wait };
    e.counters.fetches.fetch_add(1, Ordering::Relaxed);
    let (results, sent) = crate::fetch::fetch_many(&conn, &parts, &limits, session).await?;
    e.counters.incremental.fetch_add(u64::from(sent.incremental), Ordering::Relaxed);
    e.counters.named.fetch_add(sent.named as u64, Ordering::Relaxed);
    // The response holds its records' size of the budget from here on.
    let size: usize = results.iter().filter_map(|r| r.as_ref().ok()?.records.as_ref().map(bytes::Bytes::len)).sum();
    let response = response.map(|mut held| {
        if let Some(over) = held.num_permits().checked_sub(size).filter(|n| *n > 0) {
            drop(held.split(over));
        }
        Arc::new(held)
    });
    let mut out = Vec::with_capacity(results.len());
    let mut refresh = false;
    for ((spot, claim), r) in spots.iter().zip(claims).zip(results) {
        let outcome = match r {
            Ok(p) => match Ends::of(&p, s.isolation, conn.addr(), &claim.tp) {
                Ok(ends) => {
                    let batches = Batches::new(&conn, spot, &p, claim.offset, DecodeOptions::default());
                    Outcome::Data(batches, ends, false, response.clone())
                }
                Err(err) => Outcome::Error(err),
            },
            Err(err) if err.error_code() == Some(ErrorCode::OffsetOutOfRange) => {
                e.counters.resets.fetch_add(1, Ordering::Relaxed);
                Outcome::Reset(match s.reset {
                    OffsetReset::Fail => Err(err),
                    OffsetReset::Earliest => crate::fetch::list_offset(&conn, spot, -2).await,
                    OffsetReset::Latest => crate::fetch::list_offset(&conn, spot, -1).await,
                })
            }
            Err(err) => {
                refresh |= err.is_retriable();
                Outcome::Error(err)
            }
        };
        out.push(outcome);
    }
    if refresh {
        let _ = e.cluster.refresh_metadata(None).await;
    }
    Ok(out)
}

/// Hands a fetch's results to the partitions still waiting for them.
async fn deliver(e: &Arc<Engine>, slot: usize, claims: Vec<Claim>, outcomes: Vec<Outcome>) {
    // Partitions with records are decoded side by side, each in a task of its own, when
    // there are several (they share nothing but the budget), so one fetch task decodes on
    // as many cores as the runtime has; dropping `decoding` (the fetch task ending) ends them.
    let with_data = outcomes.iter().filter(|o| matches!(o, Outcome::Data(..))).count();
    let mut decoding = tokio::task::JoinSet::new();
    for (c, o) in claims.into_iter().zip(outcomes) {
        let o = match o {
            Outcome::Data(batches, ends, advanced, response) if with_data > 1 => {
                let e = Arc::clone(e);
                decoding.spawn(async move { deliver_data(&e, slot, &c, batches, ends, advanced, response).await });
                continue;
            }
            Outcome::Data(batches, ends, advanced, response) => {
                deliver_data(e, slot, &c, batches, ends, advanced, response).await;
                continue;
            }
            Outcome::Empty => continue,
            o => o,
        };
        let mut st = e.lock();
        let Some(p) = st.parts.get_mut(&c.tp).filter(|p| p.epoch == c.epoch && p.fetch_pos == c.offset) else {
            continue;
        };
        p.in_flight = false;
        let err = match o {
            Outcome::Data(..) | Outcome::Empty => None,
            Outcome::Reset(Ok(offset)) => {
                p.fetch_pos = offset;
                p.position = offset;
                None
            }
            Outcome::Reset(Err(err)) => Some(err),
            Outcome::Error(err) if err.is_retriable() => {
                tracing::debug!(partition = %c.tp, error = %err, "partition fetch failed; retrying");
                None
            }
            Outcome::Error(err) => Some(err),
        };
        if let Some(err) = err {
            e.counters.errors.fetch_add(1, Ordering::Relaxed);
            Engine::fail_partition(&mut st, &c.tp, err);
            drop(st);
            e.data.notify_waiters();
        }
    }
    while decoding.join_next().await.is_some() {}
}

/// Budget one chunk takes at most (a larger batch still makes one chunk), and at most half
/// the whole budget.
const CHUNK_BYTES: usize = 256 << 10;

/// How full a chunk being decoded is: its keys and values, and each message's own size.
fn cost(sel: &Selected) -> usize {
    sel.bytes + sel.messages.len() * std::mem::size_of::<Message>()
}

/// The budget a decoded chunk holds of its own: its decompressed keys and values (those of
/// uncompressed batches are in the fetch response, which holds its own budget), and its
/// message vector's whole capacity (a batch is taken whole, so a vector often has room for
/// twice its messages).
fn held(sel: &Selected) -> usize {
    sel.decompressed + sel.messages.capacity() * std::mem::size_of::<Message>()
}

/// Decodes a partition's fetched batches (of `response`) into chunks of about
/// [`CHUNK_BYTES`], each handed over once the budget has room for it: decompressed records
/// never take more memory than the budget, plus one chunk being decoded. The partition stays
/// claimed (or, when `advanced`, reserved to fetch task `slot`) until its last batch is
/// handed over, or a seek or revocation makes the rest moot.
///
/// A chunk takes at most a quarter of the budget: the responses in flight and being handed
/// over hold at most half of it (`Engine::fetch_bytes`), so when no chunk is left to read,
/// a chunk always finds room.
async fn deliver_data(
    e: &Engine,
    slot: usize,
    c: &Claim,
    mut batches: Batches,
    ends: Ends,
    advanced: bool,
    response: Option<Response>,
) {
    let cap = e.budget_cap();
    let chunk = CHUNK_BYTES.min(cap / 2).max(1);
    let mut expected = c.offset;
    // Where the next chunk's batches begin. Not `expected`: when `advanced`, the fetch
    // position is already past all of them, and a chunk ending there would move the reader's
    // position (and what it may commit) past the chunks still to come.
    let mut from = c.offset;
    loop {
        let mut sel = Selected::new(e.spare_vec(), from);
        let (mut end, mut failure) = (false, None);
        while cost(&sel) < chunk {
            match batches.next_into(&mut sel) {
                Ok(true) => {}
                Ok(false) => {
                    end = true;
                    break;
                }
                Err(err) => {
                    (end, failure) = (true, Some(err));
                    break;
                }
            }
        }
        // Waiting here pauses this fetch task while the application has not read enough.
        let permits = held(&sel).min(cap / 4) as u32;
        let permit = if permits > 0 { e.budget.clone().acquire_many_owned(permits).await.ok() } else { None };
        let mut st = e.lock();
        let State { parts, ready, failed, next_seq, .. } = &mut *st;
        let ours = |p: &&mut Part| {
            p.epoch == c.epoch && if advanced { p.delivering == Some(slot) } else { p.fetch_pos == expected }
        };
        let Some(p) = parts.get_mut(&c.tp).filter(ours) else {
            return;
        };
        (p.high_watermark, p.end) = (ends.high_watermark, ends.end);
        p.fetch_pos = sel.next.max(p.fetch_pos);
        expected = p.fetch_pos;
        from = sel.next;
        let mut wake_app = false;
        if sel.messages.is_empty() {
            // Markers or aborted batches only: the position moves past them.
            match p.chunks.back_mut() {
                Some(last) => last.next = last.next.max(sel.next),
                None => p.position = p.position.max(sel.next),
            }
        } else {
            e.counters.buffered.fetch_add(sel.bytes as u64, Ordering::Relaxed);
            let chunk = Chunk {
                seq: 0,
                messages: sel.messages.into(),
                next: sel.next,
                bytes: sel.bytes,
                _permit: permit,
                response: if sel.framed { response.clone() } else { None },
            };
            queue_chunk(ready, next_seq, &c.tp, p, chunk);
            wake_app = true;
        }
        if let Some(err) = failure {
            // Records that do not decode: malformed data from the partition leader.
            let err = match err {
                Error::Decode { addr, source } => Error::Malformed {
                    broker: addr,
                    what: format!("records of {} fetched at offset {}: {source}", c.tp, c.offset),
                },
                err => err,
            };
            e.counters.errors.fetch_add(1, Ordering::Relaxed);
            p.failure = Some(err);
            failed.insert(c.tp.clone());
            wake_app = true;
        }
        if end {
            if advanced {
                p.delivering = None;
            } else {
                p.in_flight = false;
            }
        }
        drop(st);
        if wake_app {
            e.data.notify_waiters();
        }
        if end {
            return;
        }
    }
}
