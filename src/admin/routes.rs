//! The admin API's routes.

use super::Admin;
use crate::pipeline::reload::{Artifact, Deployed, Reloader, StageStatus, SwapError};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// The largest plugin upload accepted, in bytes.
pub const MAX_UPLOAD: usize = 64 << 20;

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: Value) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Reply {
    reply(status, json!({ "error": message.to_string() }))
}

fn text(status: StatusCode, body: String) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; version=0.0.4")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// Compares in time independent of where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(admin: &Admin, req: &Request<Incoming>) -> bool {
    let Some(token) = &admin.token else {
        return false;
    };
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
}

/// Answers one request.
pub async fn handle(admin: &Admin, req: Request<Incoming>) -> Reply {
    let path: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let method = req.method().clone();
    if method == Method::POST && !authorized(admin, &req) {
        return error(
            StatusCode::UNAUTHORIZED,
            "a state change needs Authorization: Bearer <WEIR_ADMIN_TOKEN>",
        );
    }
    match (method, path.as_slice()) {
        (Method::GET, ["healthz"]) => reply(StatusCode::OK, json!({ "status": "ok" })),
        (Method::GET, ["readyz"]) => ready(admin),
        (Method::GET, ["metrics"]) => match &admin.metrics {
            Some(h) => text(StatusCode::OK, h.render()),
            None => error(StatusCode::NOT_FOUND, "metrics are not enabled"),
        },
        (Method::GET, ["v1", "pipelines"]) => reply(StatusCode::OK, status(admin)),
        (Method::POST, ["v1", "pipelines", p, "stages", s, "deploy"]) => {
            let Some(r) = reloader(admin, p) else {
                return error(StatusCode::NOT_FOUND, format!("no running pipeline {p:?}"));
            };
            match artifact(req, s).await {
                Ok(a) => outcome(r.deploy(s, a).await),
                Err(e) => e,
            }
        }
        (Method::POST, ["v1", "pipelines", p, "stages", s, "rollback"]) => match reloader(admin, p)
        {
            Some(r) => outcome(r.rollback(s).await),
            None => error(StatusCode::NOT_FOUND, format!("no running pipeline {p:?}")),
        },
        (Method::POST, ["v1", "pipelines", p, "checkpoint"]) => checkpoint(admin, p).await,
        (_, ["healthz" | "readyz" | "metrics"] | ["v1", "pipelines", ..]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

fn reloader(admin: &Admin, pipeline: &str) -> Option<Reloader> {
    admin
        .pipelines
        .iter()
        .find(|p| p.name == pipeline)
        .map(|p| p.reloader.clone())
}

/// Asks the pipeline to save a checkpoint and waits (up to 10 s) for it.
async fn checkpoint(admin: &Admin, pipeline: &str) -> Reply {
    let Some(c) = admin
        .pipelines
        .iter()
        .find(|p| p.name == pipeline)
        .map(|p| &p.counters)
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no running pipeline {pipeline:?}"),
        );
    };
    if !c.checkpointing.load(Ordering::Relaxed) {
        return error(
            StatusCode::CONFLICT,
            "the pipeline has no [checkpoint] store",
        );
    }
    let before = c.checkpoints_saved.load(Ordering::Relaxed);
    c.checkpoint_now.notify_one();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if c.checkpoints_saved.load(Ordering::Relaxed) > before {
            return reply(StatusCode::OK, json!({ "saved": true }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    reply(
        StatusCode::ACCEPTED,
        json!({ "saved": false, "reason": "nothing new was confirmed since the last checkpoint, or the store is slow" }),
    )
}

fn ready(admin: &Admin) -> Reply {
    let waiting: Vec<&str> = admin
        .pipelines
        .iter()
        .filter(|p| !p.counters.started.load(Ordering::Relaxed))
        .map(|p| p.name.as_str())
        .collect();
    if waiting.is_empty() {
        reply(StatusCode::OK, json!({ "status": "ready" }))
    } else {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "starting", "pipelines": waiting }),
        )
    }
}

fn stage_json(s: &StageStatus) -> Value {
    json!({
        "stage": s.stage,
        "plugin": s.plugin,
        "digest": s.digest,
        "since": s.since.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "swaps": s.swaps,
        "rollbacks": s.rollbacks,
        "last_problem": s.last_problem,
        "events_in": s.events_in,
        "events_out": s.events_out,
        "errors": s.errors,
        "state": s.state.iter().map(|(p, (keys, bytes))| json!({
            "partition": p,
            "keys": keys,
            "bytes": bytes,
        })).collect::<Vec<_>>(),
    })
}

fn status(admin: &Admin) -> Value {
    let pipelines: Vec<Value> = admin
        .pipelines
        .iter()
        .map(|p| {
            let c = &p.counters;
            let stages: Vec<Value> = p.reloader.status().iter().map(stage_json).collect();
            json!({
                "pipeline": p.name,
                "running": c.started.load(Ordering::Relaxed),
                "events_in": c.events_in.load(Ordering::Relaxed),
                "events_out": c.events_out.load(Ordering::Relaxed),
                "dead_letters": c.dead_letters.load(Ordering::Relaxed),
                "stages": stages,
            })
        })
        .collect();
    json!({ "pipelines": pipelines })
}

/// The new version from a deploy request: raw wasm (`application/wasm`,
/// with an optional `X-Weir-Signature`: the base64 of the `.minisig`
/// file), or JSON `{"path": "…"}` naming a file on the worker's disk.
async fn artifact(req: Request<Incoming>, stage: &str) -> Result<Artifact, Reply> {
    use base64::Engine;
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let signature = match req.headers().get("x-weir-signature") {
        None => None,
        Some(v) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            match decoded {
                Some(s) => Some(s),
                None => {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        "X-Weir-Signature must be the base64 of a .minisig file",
                    ))
                }
            }
        }
    };
    let body = match Limited::new(req.into_body(), MAX_UPLOAD).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("uploads are limited to {MAX_UPLOAD} bytes"),
            ))
        }
        Err(e) => return Err(error(StatusCode::BAD_REQUEST, e)),
    };
    if content_type.starts_with("application/json") {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| error(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
        let path = v["path"].as_str().ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "expected {\"path\": \"/path/to/plugin.wasm\"}",
            )
        })?;
        return Ok(Artifact::Path(path.into()));
    }
    if body.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "empty body: send the plugin as application/wasm, or {\"path\": …} as application/json",
        ));
    }
    Ok(Artifact::Bytes {
        name: format!("upload-for-{stage}.wasm"),
        bytes: body.to_vec(),
        signature,
    })
}

fn outcome(r: Result<Deployed, SwapError>) -> Reply {
    match r {
        Ok(d) => reply(
            StatusCode::OK,
            json!({ "digest": d.digest, "unchanged": d.unchanged }),
        ),
        Err(e @ SwapError::UnknownStage(_)) => error(StatusCode::NOT_FOUND, e),
        Err(e @ SwapError::Refused(_)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e @ (SwapError::RolledBack(_) | SwapError::NothingToRollBack)) => {
            error(StatusCode::CONFLICT, e)
        }
        Err(e @ SwapError::Stopped) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}
