//! Transport: HTTPS (rustls, aws-lc-rs), HTTP/1.1 keep-alive, four routes, a bounded body,
//! graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::review::{self, State};

/// kube-apiserver's own request body limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub struct Server {
    pub state: Arc<State>,
    pub tls: Arc<rustls::ServerConfig>,
    pub ready: Arc<AtomicBool>,
}

fn text(
    status: StatusCode,
    body: impl Into<Bytes>,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn route(
    state: Arc<State>,
    ready: Arc<AtomicBool>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    Ok(match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n", "text/plain"),
        (&Method::GET, "/readyz") => {
            if ready.load(Ordering::Relaxed) {
                text(StatusCode::OK, "ready\n", "text/plain")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting down\n",
                    "text/plain",
                )
            }
        }
        (&Method::GET, "/metrics") => text(
            StatusCode::OK,
            state.metrics.render(),
            "text/plain; version=0.0.4",
        ),
        (&Method::POST, "/validate") => {
            let too_big = req
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n > MAX_BODY as u64);
            let body = if too_big {
                None
            } else {
                Limited::new(req.into_body(), MAX_BODY).collect().await.ok()
            };
            match body {
                None => {
                    state.metrics.invalid.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("request body over {MAX_BODY} bytes, or unreadable");
                    let msg = format!(
                        "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"code\":413,\"message\":\"vouch: the request body is larger than {MAX_BODY} bytes, or could not be read\"}}"
                    );
                    text(StatusCode::PAYLOAD_TOO_LARGE, msg, "application/json")
                }
                Some(b) => {
                    let bytes = b.to_bytes();
                    let a = review::handle(&state, &bytes).await;
                    let status =
                        StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    text(status, a.body, "application/json")
                }
            }
        }
        (_, "/validate" | "/healthz" | "/readyz" | "/metrics") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
            "text/plain",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n", "text/plain"),
    })
}

impl Server {
    /// Serve until `shutdown` flips to true, then finish in-flight requests (up to `grace`).
    pub async fn run(
        self,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) -> std::io::Result<()> {
        let acceptor = TlsAcceptor::from(self.tls.clone());
        let open = Arc::new(AtomicUsize::new(0));
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let state = self.state.clone();
            let ready = self.ready.clone();
            let open = open.clone();
            let mut stop = shutdown.clone();
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                serve_one(acceptor, stream, peer, state, ready, &mut stop).await;
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
        self.ready.store(false, Ordering::Relaxed);
        tracing::info!("shutting down: no new connections, finishing open requests");
        let until = tokio::time::Instant::now() + grace;
        while open.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

async fn serve_one(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
    ready: Arc<AtomicBool>,
    stop: &mut watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |req| route(state.clone(), ready.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(Duration::from_secs(30))
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(tls), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
