//! The admin API (HTTP/1.1; `docs/admin-api.yaml` describes it). It binds
//! to loopback unless told otherwise. Reading needs nothing; every state
//! change needs `Authorization: Bearer <token>`, checked before the body is
//! read: without it the answer is 401 and nothing changes.

mod routes;

use crate::pipeline::reload::Reloader;
use crate::pipeline::{RunCounters, RunHandle};
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;

pub use routes::MAX_UPLOAD;

/// The loopback address the admin API binds to by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9465";

/// What the admin API serves.
#[derive(Clone)]
pub struct Admin {
    /// The pipelines it serves.
    pub pipelines: Arc<Vec<Served>>,
    /// The bearer token for state changes; `None` refuses every change.
    pub token: Option<String>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
}

/// A running pipeline, as the admin API reaches it.
#[derive(Clone)]
pub struct Served {
    /// The pipeline's name.
    pub name: String,
    /// Its live counters.
    pub counters: Arc<RunCounters>,
    /// Its reload manager.
    pub reloader: Reloader,
}

impl From<&RunHandle> for Served {
    fn from(run: &RunHandle) -> Self {
        Served {
            name: run.name().to_string(),
            counters: run.counters().clone(),
            reloader: run.reloader().clone(),
        }
    }
}

/// Why the admin API could not start.
#[derive(Debug, thiserror::Error)]
#[error("admin API: cannot listen on {addr}: {source}")]
pub struct AdminError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    pub source: std::io::Error,
}

/// Binds `addr` and serves the admin API until the task is dropped;
/// returns the bound address (useful with port 0).
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(addr: SocketAddr, admin: Admin) -> Result<SocketAddr, AdminError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AdminError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AdminError { addr, source })?;
    if !bound.ip().is_loopback() {
        tracing::warn!("admin API listens on {bound}, beyond loopback");
    }
    if admin.token.is_none() {
        tracing::warn!("WEIR_ADMIN_TOKEN is not set: the admin API refuses every state change");
    }
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let admin = admin.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = hyper::service::service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, std::convert::Infallible>(routes::handle(&admin, req).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!("admin connection: {e}");
                }
            });
        }
    });
    Ok(bound)
}
