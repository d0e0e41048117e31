//! One TCP connection to one broker, with requests pipelined over it.

use crate::error::{range_text, Error, Result};
use bytes::{Bytes, BytesMut};
use kafkit_protocol::frame::{encode_request, response_header_version};
use kafkit_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use kafkit_protocol::{ApiKey, ApiVersion, ErrorCode, Message, Request, VersionRange};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The read half of a connection's byte stream (TCP, or TLS over TCP).
pub(crate) type ReadHalf = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
/// The write half of a connection's byte stream.
pub(crate) type WriteHalf = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;
use tokio::sync::{mpsc, oneshot};

mod io;
use io::{read_loop, write_loop, Encode, Frame, InFlight, Outgoing, Pending};

/// How many requests may wait to be written before `request` waits for room.
const WRITE_QUEUE: usize = 64;

type Reply = oneshot::Sender<Result<Bytes>>;

struct Shared {
    addr: String,
    client_id: Option<String>,
    /// In microseconds, so it can change while requests are in flight.
    request_timeout_us: std::sync::atomic::AtomicU64,
    /// How long, in microseconds, the broker may hold a request on purpose before answering
    /// (a Fetch's `max_wait`): [`Conn::silent_for`] counts only the silence beyond it.
    hold_us: std::sync::atomic::AtomicU64,
    tx: mpsc::Sender<Outgoing>,
    correlation: AtomicI32,
    closed: AtomicBool,
    /// Turns `true` when the connection closes, for the requests waiting on it: one queued
    /// in the instant the connection closed may sit in a queue no task takes from any more
    /// (the writer task is aborted), so its response's sender is never dropped.
    closing: tokio::sync::watch::Sender<bool>,
    reason: Mutex<Option<String>>,
    in_flight: InFlight,
    versions: Mutex<HashMap<i16, VersionRange>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Completed SASL authentications (the first, then each re-authentication).
    authentications: std::sync::atomic::AtomicU32,
    /// Takes no new requests (its SASL session is ending); those in flight finish.
    retired: AtomicBool,
}

/// A connection to one broker (kafka-go's `Conn`).
///
/// Requests are pipelined: any number of tasks may call [`Conn::request`] at once; frames are
/// written in the order they are queued and responses matched to requests in that order (the
/// protocol guarantees a broker answers in order), each checked by correlation id. `Conn` is
/// a cheap `Clone` (an `Arc`); the connection closes when [`Conn::close`] is called or the
/// last clone is dropped.
///
/// # Cancellation
/// Dropping a [`Conn::request`] future is safe at any point. Before the request is queued,
/// nothing is sent. After, the frame is still written whole (a writer task owns the socket,
/// so no half-written frame can poison the connection) and its response is read and
/// discarded; the broker may still apply it.
///
/// # Errors
/// An I/O error, an unexpected correlation id, an undecodable response or a request
/// unanswered within its timeout (Java `request.timeout.ms`, which also disconnects) closes
/// the connection, and every request waiting on it fails with [`Error::ConnectionClosed`]
/// (the one whose response was malformed with [`Error::Decode`], the one that timed out with
/// [`Error::RequestTimeout`]). A [`Cluster`](crate::Cluster) dials again on the next use.
#[derive(Clone)]
pub struct Conn {
    shared: Arc<Shared>,
}

/// A stretch of a connection that no other request interleaves with ([`Conn::exclusive`]);
/// it ends when dropped.
pub(crate) struct Exclusive {
    conn: Conn,
    tx: mpsc::Sender<Outgoing>,
}

impl Exclusive {
    /// The connection.
    pub(crate) fn conn(&self) -> &Conn {
        &self.conn
    }

    /// As [`Conn::request_version`], inside the stretch.
    pub(crate) async fn request_version<R: Request>(&self, req: &R, version: ApiVersion) -> Result<R::Response> {
        let rx = self
            .conn
            .queue_on(&self.tx, |buf, corr, client_id| encode_request(buf, corr, client_id, req, version))
            .await?;
        let frame = self.conn.wait(R::API_KEY, rx).await?;
        self.conn.decode::<R::Response>(frame, R::API_KEY, version)
    }
}

/// A [`Conn`] that does not keep the connection open (for background tasks such as
/// re-authentication).
pub(crate) struct WeakConn(std::sync::Weak<Shared>);

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("addr", &self.shared.addr).field("closed", &self.is_closed()).finish()
    }
}

impl Conn {
    /// Starts the writer and reader tasks on a connected socket. Versions are negotiated
    /// separately ([`Conn::negotiate`]).
    pub(crate) fn start(
        (rd, wr): (ReadHalf, WriteHalf),
        addr: String,
        client_id: Option<String>,
        request_timeout: Duration,
        max_response_bytes: usize,
    ) -> Conn {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let shared = Arc::new(Shared {
            addr,
            client_id,
            request_timeout_us: std::sync::atomic::AtomicU64::new(
                request_timeout.as_micros().min(u64::MAX as u128) as u64
            ),
            hold_us: std::sync::atomic::AtomicU64::new(0),
            tx,
            correlation: AtomicI32::new(0),
            closed: AtomicBool::new(false),
            closing: tokio::sync::watch::Sender::new(false),
            reason: Mutex::new(None),
            in_flight: Arc::new(Mutex::new(Pending::default())),
            versions: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            authentications: std::sync::atomic::AtomicU32::new(0),
            retired: AtomicBool::new(false),
        });
        // The tasks hold only a weak reference, so dropping every Conn ends them.
        let weak = Arc::downgrade(&shared);
        let in_flight = shared.in_flight.clone();
        let w = tokio::spawn(write_loop(wr, rx, in_flight.clone(), weak.clone()));
        let r = tokio::spawn(read_loop(rd, in_flight, weak, max_response_bytes));
        if let Ok(mut t) = shared.tasks.lock() {
            t.push(w.abort_handle());
            t.push(r.abort_handle());
        }
        Conn { shared }
    }

    /// A handle that does not keep the connection open.
    pub(crate) fn downgrade(&self) -> WeakConn {
        WeakConn(Arc::downgrade(&self.shared))
    }

    /// The connection behind `weak`, if it is still held somewhere.
    pub(crate) fn upgrade(weak: &WeakConn) -> Option<Conn> {
        weak.0.upgrade().map(|shared| Conn { shared })
    }

    /// How many times this connection completed SASL authentication: 1 after dialing with
    /// SASL, one more per re-authentication (KIP-368); 0 without SASL.
    pub fn authentications(&self) -> u32 {
        self.shared.authentications.load(Ordering::Relaxed)
    }

    pub(crate) fn count_authentication(&self) {
        self.shared.authentications.fetch_add(1, Ordering::Relaxed);
    }

    /// The broker address this connection was dialed to.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// How long each request waits for its response (the dialer's request timeout unless
    /// changed with [`Conn::set_request_timeout`]).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_micros(self.shared.request_timeout_us.load(Ordering::Relaxed))
    }

    /// Changes how long requests sent from now on, through this connection and its clones,
    /// wait for their responses: kafka-go's `Conn.SetDeadline` as a duration rather than an
    /// instant. To bound one call, wrap it in `tokio::time::timeout` instead.
    pub fn set_request_timeout(&self, t: Duration) {
        self.shared.request_timeout_us.store(t.as_micros().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// How long the broker has been silent while a request waits for its response, beyond
    /// the hold ([`Conn::set_hold`]): since the oldest waiting request was written, or since
    /// the last response if one came after that. `None` when no request waits. A healthy
    /// broker answers within its own timeouts (a Fetch's `max_wait`, a Produce's
    /// replication); a frozen one never does.
    pub(crate) fn silent_for(&self) -> Option<Duration> {
        let q = self.shared.in_flight.lock().ok()?;
        let hold = Duration::from_micros(self.shared.hold_us.load(Ordering::Relaxed));
        q.waiting_since.filter(|_| !q.replies.is_empty()).map(|t| t.elapsed().saturating_sub(hold))
    }

    /// Declares how long the broker may hold requests on this connection before it answers
    /// (a Fetch's `max_wait`), so that a long poll is not taken for silence.
    pub(crate) fn set_hold(&self, d: Duration) {
        self.shared.hold_us.store(d.as_micros().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// Whether the connection is closed; requests on it fail.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) || self.shared.retired.load(Ordering::Acquire)
    }

    /// Takes no new requests from now on (they fail with [`Error::ConnectionClosed`], and a
    /// cluster dials a fresh connection); requests in flight still get their responses.
    pub(crate) fn retire(&self, reason: &str) {
        if let Ok(mut r) = self.shared.reason.lock() {
            r.get_or_insert_with(|| reason.to_string());
        }
        self.shared.retired.store(true, Ordering::Release);
    }

    /// Closes the connection; waiting requests fail with [`Error::ConnectionClosed`].
    pub fn close(&self) {
        shutdown(&self.shared, "closed by the application");
    }

    /// The versions the broker advertised for `key` in ApiVersions.
    pub fn broker_versions(&self, key: ApiKey) -> Option<VersionRange> {
        self.shared.versions.lock().ok()?.get(&key.key()).copied()
    }

    /// Lowers the highest version of `key` this connection uses to `max` (see
    /// [`Dialer::with_max_version`](crate::Dialer::with_max_version)).
    pub(crate) fn cap_version(&self, key: ApiKey, max: i16) {
        if let Ok(mut v) = self.shared.versions.lock() {
            if let Some(r) = v.get_mut(&key.key()) {
                if max < r.min {
                    v.remove(&key.key());
                } else {
                    r.max = r.max.min(max);
                }
            }
        }
    }

    /// The version of `R` this connection uses: the highest that both kafkit and the broker
    /// speak, among the stable versions ([`Request::STABLE_VERSIONS`]: a latest version the
    /// schema marks unstable, such as InitProducerId v6, is never negotiated).
    ///
    /// # Errors
    /// [`Error::UnsupportedByBroker`] when they share none.
    pub fn version_for<R: Request>(&self) -> Result<ApiVersion> {
        self.version_for_key(R::API_KEY, R::STABLE_VERSIONS)
    }

    fn version_for_key(&self, key: ApiKey, ours: VersionRange) -> Result<ApiVersion> {
        let broker = self.broker_versions(key);
        broker.and_then(|b| ours.highest_common(b)).ok_or_else(|| Error::UnsupportedByBroker {
            addr: self.shared.addr.clone(),
            api: key,
            broker: range_text(broker.map(|b| (ApiVersion(b.min), ApiVersion(b.max)))),
        })
    }

    /// Sends `req` at the negotiated version and waits for its response (at most the
    /// dialer's request timeout).
    ///
    /// # Errors
    /// [`Error::UnsupportedByBroker`], [`Error::Encode`], [`Error::RequestTimeout`],
    /// [`Error::ConnectionClosed`], [`Error::Decode`]. Error codes inside the response are the
    /// caller's to read.
    pub async fn request<R: Request>(&self, req: &R) -> Result<R::Response> {
        let v = self.version_for::<R>()?;
        self.request_version(req, v).await
    }

    /// Sends `req` at `version` (which must be one kafkit speaks; the broker's support is not
    /// checked) and waits for its response.
    ///
    /// # Errors
    /// As [`Conn::request`].
    pub async fn request_version<R: Request>(&self, req: &R, version: ApiVersion) -> Result<R::Response> {
        let frame = self
            .roundtrip(R::API_KEY, |buf, corr, client_id| encode_request(buf, corr, client_id, req, version))
            .await?;
        self.decode::<R::Response>(frame, R::API_KEY, version)
    }

    /// As [`Conn::request`], but waiting `timeout` for the response instead of the
    /// connection's request timeout: for requests the broker holds on purpose, such as
    /// JoinGroup (up to the rebalance timeout).
    ///
    /// # Errors
    /// As [`Conn::request`].
    pub async fn request_within<R: Request>(
        &self,
        req: &R,
        version: ApiVersion,
        timeout: Duration,
    ) -> Result<R::Response> {
        let rx = self.queue(|buf, corr, client_id| encode_request(buf, corr, client_id, req, version)).await?;
        let frame = self.wait_for(R::API_KEY, rx, timeout).await?;
        self.decode::<R::Response>(frame, R::API_KEY, version)
    }

    /// Sends a request the broker does not answer (Produce with acks=0), returning once it
    /// is queued for writing.
    ///
    /// # Errors
    /// [`Error::Encode`], [`Error::ConnectionClosed`].
    pub async fn send_without_response<R: Request>(&self, req: &R) -> Result<()> {
        let v = self.version_for::<R>()?;
        self.send_without_response_version(req, v).await
    }

    /// [`Conn::send_without_response`] at `version` (which must be one kafkit speaks; the
    /// broker's support is not checked).
    ///
    /// # Errors
    /// As [`Conn::send_without_response`].
    pub async fn send_without_response_version<R: Request>(&self, req: &R, v: ApiVersion) -> Result<()> {
        let corr = self.next_correlation();
        let mut buf = BytesMut::new();
        encode_request(&mut buf, corr, self.shared.client_id.as_deref(), req, v)
            .map_err(|source| Error::Encode { addr: self.shared.addr.clone(), source })?;
        self.shared
            .tx
            .send(Outgoing { frame: Frame::Ready(buf.freeze()), correlation_id: corr, reply: None, exclusive: None })
            .await
            .map_err(|_| self.closed_error())
    }

    fn next_correlation(&self) -> i32 {
        // Wraps at i32::MAX; matching is by order, and ids only check it.
        self.shared.correlation.fetch_add(1, Ordering::Relaxed) & i32::MAX
    }

    /// Encodes with a fresh correlation id, queues, and waits for the response frame
    /// (correlation id first, no size prefix).
    async fn roundtrip(
        &self,
        api: ApiKey,
        encode: impl FnOnce(&mut BytesMut, i32, Option<&str>) -> std::result::Result<(), kafkit_protocol::EncodeError>,
    ) -> Result<Bytes> {
        let rx = self.queue(encode).await?;
        self.wait(api, rx).await
    }

    /// Encodes and queues a request for writing; returns the receiver of its response frame.
    async fn queue(
        &self,
        encode: impl FnOnce(&mut BytesMut, i32, Option<&str>) -> std::result::Result<(), kafkit_protocol::EncodeError>,
    ) -> Result<oneshot::Receiver<Result<Bytes>>> {
        self.queue_on(&self.shared.tx, encode).await
    }

    /// Encodes and queues a request on `tx`: the connection's queue, or an [`Exclusive`]
    /// stretch's.
    async fn queue_on(
        &self,
        tx: &mpsc::Sender<Outgoing>,
        encode: impl FnOnce(&mut BytesMut, i32, Option<&str>) -> std::result::Result<(), kafkit_protocol::EncodeError>,
    ) -> Result<oneshot::Receiver<Result<Bytes>>> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let corr = self.next_correlation();
        let mut buf = BytesMut::new();
        encode(&mut buf, corr, self.shared.client_id.as_deref())
            .map_err(|source| Error::Encode { addr: self.shared.addr.clone(), source })?;
        self.enqueue(tx, corr, Frame::Ready(buf.freeze())).await
    }

    /// Queues `frame`, made with correlation id `corr`, on `tx` with a reply; returns the
    /// receiver of its response frame.
    async fn enqueue(
        &self,
        tx: &mpsc::Sender<Outgoing>,
        corr: i32,
        frame: Frame,
    ) -> Result<oneshot::Receiver<Result<Bytes>>> {
        let (reply, rx) = oneshot::channel();
        tx.send(Outgoing { frame, correlation_id: corr, reply: Some((corr, reply)), exclusive: None })
            .await
            .map_err(|_| self.closed_error())?;
        Ok(rx)
    }

    /// Starts a stretch of this connection that no other request interleaves with: frames
    /// queued before it are written first, then only the [`Exclusive`]'s, until it is dropped
    /// (frames queued meanwhile wait, in order). SASL needs this: between SaslHandshake and
    /// the last SaslAuthenticate a Kafka broker reads every frame as part of the exchange and
    /// closes the connection on any other request (`SaslServerAuthenticator`: "Unexpected
    /// Kafka request of type ... during SASL authentication").
    pub(crate) async fn exclusive(&self) -> Result<Exclusive> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let (tx, rx) = mpsc::channel(4);
        self.shared
            .tx
            .send(Outgoing { frame: Frame::Ready(Bytes::new()), correlation_id: -1, reply: None, exclusive: Some(rx) })
            .await
            .map_err(|_| self.closed_error())?;
        Ok(Exclusive { conn: self.clone(), tx })
    }

    /// Waits for a queued request's response frame, at most the request timeout.
    async fn wait(&self, api: ApiKey, rx: oneshot::Receiver<Result<Bytes>>) -> Result<Bytes> {
        self.wait_for(api, rx, self.request_timeout()).await
    }

    async fn wait_for(&self, api: ApiKey, rx: oneshot::Receiver<Result<Bytes>>, timeout: Duration) -> Result<Bytes> {
        let mut closing = self.shared.closing.subscribe();
        let answered = async {
            tokio::select! {
                // A response that came before the close is still the answer.
                biased;
                r = rx => r.map_err(|_| ()),
                _ = closing.wait_for(|closed| *closed) => Err(()),
            }
        };
        match tokio::time::timeout(timeout, answered).await {
            Err(_) => {
                // As the Java client does: a broker that leaves a request unanswered this
                // long is not trusted with the others waiting behind it, nor with new ones.
                shutdown(&self.shared, &format!("{api:?} unanswered within the request timeout ({timeout:?})"));
                Err(Error::RequestTimeout { addr: self.shared.addr.clone(), api, timeout })
            }
            Ok(Err(_)) => Err(self.closed_error()),
            Ok(Ok(r)) => r,
        }
    }

    /// Queues `req` at `version` for writing now and returns a future of its response: the
    /// order in which calls return is the order the frames reach the socket, so a caller that
    /// awaits each call before the next keeps its requests in order (the producer relies on
    /// this for sequence numbers) while their responses are awaited concurrently.
    ///
    /// # Cancellation
    /// Dropping the returned future discards the response; the request is sent regardless.
    ///
    /// # Errors
    /// [`Error::Encode`] and [`Error::ConnectionClosed`] at once; the future then fails as
    /// [`Conn::request`] does.
    pub async fn send_ordered<R: Request>(
        &self,
        req: &R,
        version: ApiVersion,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static> {
        let rx = self.queue(|buf, corr, client_id| encode_request(buf, corr, client_id, req, version)).await?;
        Ok(self.answer::<R>(rx, version))
    }

    /// [`Conn::send_ordered`] taking the request by value: this connection's writer task
    /// encodes it when it takes it from the queue, into the connection's one frame buffer
    /// (`capacity` bytes reserved up front; 0 lets it grow). A request whose byte fields
    /// share memory with the caller (a Produce request's record batches are
    /// [`Bytes`](bytes::Bytes)) is then never copied while it waits to be written, and is
    /// copied once, just before it is written; the producer sends every Produce request this
    /// way.
    ///
    /// # Cancellation
    /// As [`Conn::send_ordered`].
    ///
    /// # Errors
    /// [`Error::ConnectionClosed`] at once. The future fails with [`Error::Encode`] when the
    /// request does not encode at `version` (nothing is sent and the connection stays open),
    /// and otherwise as [`Conn::request`] does.
    pub async fn send_ordered_owned<R: Request + Send + 'static>(
        &self,
        req: R,
        version: ApiVersion,
        capacity: usize,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let corr = self.next_correlation();
        let client_id = self.shared.client_id.clone();
        let encode: Encode = Box::new(move |buf| encode_request(buf, corr, client_id.as_deref(), &req, version));
        let rx = self.enqueue(&self.shared.tx, corr, Frame::Deferred { encode, size: capacity }).await?;
        Ok(self.answer::<R>(rx, version))
    }

    /// The response to a queued request, as a future that owns what it needs.
    fn answer<R: Request>(
        &self,
        rx: oneshot::Receiver<Result<Bytes>>,
        version: ApiVersion,
    ) -> impl std::future::Future<Output = Result<R::Response>> + Send + 'static {
        let conn = self.clone();
        async move {
            let frame = conn.wait(R::API_KEY, rx).await?;
            conn.decode::<R::Response>(frame, R::API_KEY, version)
        }
    }

    /// Reads a response frame. Bytes left after a complete body are ignored, as the Java
    /// client and librdkafka do (librdkafka's mock cluster appends one to Metadata v12); a
    /// body that does not decode closes the connection.
    fn decode<M: Message>(&self, mut frame: Bytes, api: ApiKey, v: ApiVersion) -> Result<M> {
        let out =
            ResponseHeader::decode(&mut frame, response_header_version(api, v)).and_then(|_| M::decode(&mut frame, v));
        if !frame.is_empty() {
            tracing::debug!(addr = %self.shared.addr, api = ?api, version = v.0, trailing = frame.len(), "ignoring bytes after a response");
        }
        out.map_err(|source| {
            // A response we cannot read leaves the stream's meaning in doubt: close.
            shutdown(&self.shared, &format!("undecodable response: {source}"));
            Error::Decode { addr: self.shared.addr.clone(), source }
        })
    }

    fn closed_error(&self) -> Error {
        let reason =
            self.shared.reason.lock().ok().and_then(|r| r.clone()).unwrap_or_else(|| "connection closed".to_string());
        Error::ConnectionClosed { addr: self.shared.addr.clone(), reason }
    }

    /// ApiVersions negotiation (KIP-511): sends the highest version kafkit speaks; a broker
    /// that does not know it answers UNSUPPORTED_VERSION with the versions it does serve, and
    /// the request is sent again at the highest common one. The answer is read at the version
    /// sent, else as v0 (as the Java client does); when it reads as neither but its leading
    /// error code is UNSUPPORTED_VERSION (librdkafka's mock cluster writes such a body), the
    /// request is sent again as v0, which every broker serves.
    pub(crate) async fn negotiate(&self) -> Result<()> {
        let ours = ApiVersionsRequest::VERSIONS;
        let mut v = ApiVersion(ours.max);
        for _ in 0..3 {
            let req = if v.0 >= 3 {
                ApiVersionsRequest::default()
                    .with_client_software_name("kafkit".into())
                    .with_client_software_version(env!("CARGO_PKG_VERSION").into())
            } else {
                ApiVersionsRequest::default()
            };
            let frame = self
                .roundtrip(ApiKey::ApiVersions, |buf, corr, client_id| encode_request(buf, corr, client_id, &req, v))
                .await?;
            let parsed = self
                .decode_api_versions(frame.clone(), v)
                .or_else(|| self.decode_api_versions(frame.clone(), ApiVersion(0)));
            let Some(resp) = parsed else {
                // The error code leads the body (after the 4-byte correlation id) in every version.
                let unsupported = frame.len() >= 6
                    && i16::from_be_bytes([frame[4], frame[5]]) == ErrorCode::UnsupportedVersion.code();
                if unsupported && v.0 > 0 {
                    v = ApiVersion(0);
                    continue;
                }
                // Neither: report the parse error at the version sent, and close.
                return self.decode::<ApiVersionsResponse>(frame, ApiKey::ApiVersions, v).map(|_| ());
            };
            let broker: HashMap<i16, VersionRange> =
                resp.api_keys.iter().map(|k| (k.api_key, VersionRange::new(k.min_version, k.max_version))).collect();
            if ErrorCode::from_code(resp.error_code) == ErrorCode::UnsupportedVersion {
                let theirs = broker.get(&ApiKey::ApiVersions.key()).copied().unwrap_or(VersionRange::new(0, 0));
                match ours.highest_common(theirs) {
                    Some(next) if next < v => v = next,
                    _ => v = ApiVersion(0),
                }
                continue;
            }
            Error::check(resp.error_code, None, || format!("ApiVersions v{} to {}", v.0, self.shared.addr))?;
            if let Ok(mut versions) = self.shared.versions.lock() {
                *versions = broker;
            }
            return Ok(());
        }
        Err(Error::UnsupportedByBroker {
            addr: self.shared.addr.clone(),
            api: ApiKey::ApiVersions,
            broker: "no common version".into(),
        })
    }

    /// The ApiVersions response read at `v`, or `None` when it does not parse at `v`. A
    /// broker answering UNSUPPORTED_VERSION may use the v0 format (Apache Kafka) or the
    /// version asked for (librdkafka's mock cluster): the caller falls back to v0 on `None`,
    /// as the Java client does.
    fn decode_api_versions(&self, mut frame: Bytes, v: ApiVersion) -> Option<ApiVersionsResponse> {
        ResponseHeader::decode(&mut frame, ApiVersion(0)).ok()?;
        let r = ApiVersionsResponse::decode(&mut frame, v).ok()?;
        frame.is_empty().then_some(r)
    }
}

fn shutdown(shared: &Shared, reason: &str) {
    if shared.closed.swap(true, Ordering::AcqRel) {
        return;
    }
    tracing::debug!(addr = %shared.addr, reason, "closing connection");
    if let Ok(mut r) = shared.reason.lock() {
        *r = Some(reason.to_string());
    }
    fail_all(&shared.in_flight, &shared.addr, reason);
    shared.closing.send_replace(true);
    if let Ok(tasks) = shared.tasks.lock() {
        for t in tasks.iter() {
            t.abort();
        }
    }
}

fn fail_all(in_flight: &InFlight, addr: &str, reason: &str) {
    let pending: Vec<_> = in_flight.lock().map(|mut q| q.replies.drain(..).collect()).unwrap_or_default();
    for (_, reply) in pending {
        let _ = reply.send(Err(Error::ConnectionClosed { addr: addr.to_string(), reason: reason.to_string() }));
    }
}
