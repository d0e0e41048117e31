//! A TCP proxy in front of a broker that a test can cut off: the network fault of a broker
//! that is reachable one moment and silent the next, without a connection being closed.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the bytes of its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Bytes pass both ways.
    Forward,
    /// Nothing passes either way and nothing is closed: the proxy stops reading, so bytes wait
    /// in the kernel's buffers as they would behind a partitioned network, and pass (in order,
    /// none lost) when the mode goes back to `Forward`. New connections are accepted and wait too.
    Blackhole,
    /// Every connection is closed, and new ones are closed as soon as they are accepted.
    Refuse,
}

/// A proxy from a loopback address to one upstream address, on a runtime of its own (so sync
/// and async tests alike can use it); it stops when dropped.
pub struct Proxy {
    addr: String,
    mode: watch::Sender<ProxyMode>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Listens on `listen` (`host:port`; port 0 for any) and forwards to `upstream`.
    pub fn start(listen: &str, upstream: &str) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the proxy");
        let listener =
            runtime.block_on(TcpListener::bind(listen)).unwrap_or_else(|e| panic!("proxy: binding {listen}: {e}"));
        let addr = listener.local_addr().expect("proxy address").to_string();
        let (mode, rx) = watch::channel(ProxyMode::Forward);
        let upstream: Arc<str> = upstream.into();
        runtime.spawn(accept(listener, upstream, rx));
        Proxy { addr, mode, runtime: Some(runtime) }
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Switches every connection, at once.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Waits while the mode is `Blackhole`; `false` once it is `Refuse`.
async fn passable(mode: &mut watch::Receiver<ProxyMode>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            ProxyMode::Forward => return true,
            ProxyMode::Refuse => return false,
            ProxyMode::Blackhole => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}

async fn accept(listener: TcpListener, upstream: Arc<str>, mode: watch::Receiver<ProxyMode>) {
    while let Ok((client, _)) = listener.accept().await {
        let mut m = mode.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if !passable(&mut m).await {
                return; // drops (closes) the client
            }
            let Ok(server) = TcpStream::connect(&*upstream).await else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            // Either direction ending (or the mode turning to Refuse) ends both.
            tokio::select! {
                _ = pump(cr, sw, m.clone()) => {}
                _ = pump(sr, cw, m) => {}
            }
        });
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !passable(&mut mode).await {
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            // A cut while waiting for bytes: go back to waiting for the mode.
            _ = mode.changed() => continue,
        };
        // Bytes read just before a cut are held until it heals.
        if !passable(&mut mode).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
