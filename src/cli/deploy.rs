//! `weir deploy`: a client of a running worker's admin API.

use super::Outcome;
use anyhow::Context;
use base64::Engine;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

/// Uploads `plugin` (and its `.minisig`, when there is one) as the new
/// version of `stage` in `pipeline`.
pub fn deploy(
    admin: SocketAddr,
    pipeline: &str,
    stage: &str,
    plugin: &Path,
) -> anyhow::Result<Outcome> {
    let bytes =
        std::fs::read(plugin).with_context(|| format!("cannot read {}", plugin.display()))?;
    let token = std::env::var("WEIR_ADMIN_TOKEN").unwrap_or_default();
    let sig_path = crate::signing::signature_path(plugin);
    let signature = match std::fs::read(&sig_path) {
        Ok(s) => format!(
            "X-Weir-Signature: {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(s)
        ),
        Err(_) => String::new(),
    };
    let mut stream = TcpStream::connect(admin)
        .with_context(|| format!("cannot reach the admin API at {admin}"))?;
    write!(
        stream,
        "POST /v1/pipelines/{pipeline}/stages/{stage}/deploy HTTP/1.1\r\nHost: {admin}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/wasm\r\n{signature}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )?;
    stream.write_all(&bytes)?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).unwrap_or("?");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    if status == "200" {
        println!("deployed: {body}");
        Ok(Outcome::Success)
    } else {
        eprintln!("refused ({status}): {body}");
        Ok(Outcome::Problems)
    }
}
