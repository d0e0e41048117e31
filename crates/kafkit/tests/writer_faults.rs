//! The idempotent `Writer` when responses are lost: a proxy in front of a real broker
//! (Apache Kafka, which checks producer sequence numbers) lets produce requests through but, for
//! some of them, drops the connection instead of passing the broker's response back. The
//! broker has applied those batches (and maybe the ones after them in flight); the writer
//! cannot know and must retry. Every message must land exactly once, in order.

mod common;

use bytes::{Buf, Bytes, BytesMut};
use common::unique_topic;
use kafkit::{Dialer, Message, TopicConfig, Writer, WriterConfig};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Produce responses (counted across connections, from 1) that the proxy swallows, closing
/// the client's connection instead.
struct Faults {
    produce_responses: AtomicUsize,
    drop_at: HashSet<usize>,
    dropped: AtomicUsize,
}

async fn proxy(listener: TcpListener, upstream: String, faults: Arc<Faults>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { return };
        let upstream = upstream.clone();
        let faults = faults.clone();
        tokio::spawn(async move {
            let Ok(broker) = TcpStream::connect(&upstream).await else { return };
            let (mut cr, mut cw) = client.into_split();
            let (mut br, mut bw) = broker.into_split();
            // Correlation id -> API key of the requests seen on this connection.
            let apis: Arc<Mutex<HashMap<i32, i16>>> = Arc::default();
            let apis_w = apis.clone();
            let up = tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    if cr.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    while buf.len() >= 4 {
                        let n = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                        if buf.len() < 4 + n {
                            break;
                        }
                        let frame = buf.split_to(4 + n);
                        let key = i16::from_be_bytes([frame[4], frame[5]]);
                        let corr = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                        apis_w.lock().unwrap().insert(corr, key);
                        if bw.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                }
            });
            let mut buf = BytesMut::new();
            'conn: loop {
                if br.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                    break;
                }
                while buf.len() >= 4 {
                    let n = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    if buf.len() < 4 + n {
                        break;
                    }
                    let frame: Bytes = buf.split_to(4 + n).freeze();
                    let corr = (&frame[4..8]).get_i32();
                    if apis.lock().unwrap().remove(&corr) == Some(0) {
                        let k = faults.produce_responses.fetch_add(1, Ordering::SeqCst) + 1;
                        if faults.drop_at.contains(&k) {
                            faults.dropped.fetch_add(1, Ordering::SeqCst);
                            break 'conn;
                        }
                    }
                    if cw.write_all(&frame).await.is_err() {
                        break 'conn;
                    }
                }
            }
            up.abort();
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_produce_responses_neither_lose_duplicate_nor_reorder_messages() {
    common::init_tracing();
    // A node of its own whose PROXIED listener tells clients to connect through the proxy.
    let cluster = common::Cluster::start(common::ClusterOptions::default().proxied());
    let (upstream, advertised) = cluster.proxied(1);
    let listener = TcpListener::bind(&advertised).await.unwrap();
    let faults = Arc::new(Faults {
        produce_responses: AtomicUsize::new(0),
        drop_at: [3, 9, 16, 24].into_iter().collect(),
        dropped: AtomicUsize::new(0),
    });
    tokio::spawn(proxy(listener, upstream, faults.clone()));
    let addr = advertised;

    let topic = unique_topic("lost-responses");
    common::create_topics(&addr, &[TopicConfig::new(&topic, 1)]).await;
    let config = WriterConfig::default()
        .with_topic(&topic)
        .with_batch_size(10)
        .with_linger(Duration::from_millis(2))
        .with_max_in_flight(5);
    let w = Writer::new(&[&addr], config).await.unwrap();
    let mut futures = Vec::new();
    for i in 0..600 {
        futures.push(w.write(Message::new(None::<Bytes>, Some(Bytes::from(i.to_string())))).await.unwrap());
    }
    for (i, f) in futures.into_iter().enumerate() {
        f.await.unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    assert_eq!(faults.dropped.load(Ordering::SeqCst), 4, "the faults fired");
    assert!(w.stats().retries >= 4, "{:?}", w.stats());

    // The log: 0..599, each once, in order.
    let mut pc = Dialer::new().dial_leader(&addr, &topic, 0).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        let b = pc.read_batch(1, 8 << 20).await.unwrap();
        got.extend(b.messages.iter().map(|m| String::from_utf8(m.value.clone().unwrap().to_vec()).unwrap()));
        if pc.offset() >= b.high_watermark && got.len() >= 600 {
            break;
        }
    }
    let want: Vec<String> = (0..600).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
}
