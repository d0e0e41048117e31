//! The HTTP endpoint (feature `http`, hyper 1): `GET /health/ready` and `GET /health/live`
//! answer 200 or 503 with the [`Health`](super::Health) as JSON; `GET /stats` the per-topic
//! [`TopicStats`](crate::TopicStats) as JSON. HTTP/1.1, no TLS: bind it to an address only
//! the orchestrator reaches.

use crate::error::{Error, Result};
use crate::ServiceHandle;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Listens on `addr` and serves until the returned task is aborted.
pub(crate) async fn serve(addr: &str, handle: ServiceHandle) -> Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Settings(format!("health.listen: cannot listen on {addr}: {e}")))?;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "health endpoint");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handle = handle.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let handle = handle.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&handle, req.uri().path())) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    }))
}

fn answer(handle: &ServiceHandle, path: &str) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/health/ready" | "/health/live" => {
            let h = handle.health();
            let ok = if path.ends_with("ready") { h.ready() } else { h.live() };
            let mut v = serde_json::to_value(&h).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("ready".into(), h.ready().into());
                o.insert("live".into(), h.live().into());
                o.insert("reason".into(), h.not_ready_because().into());
            }
            (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, v.to_string())
        }
        "/stats" => (StatusCode::OK, serde_json::to_string(&handle.stats()).unwrap_or_default()),
        _ => (StatusCode::NOT_FOUND, "{\"error\":\"not found: /health/ready, /health/live, /stats\"}".into()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}
