//! A new version's artifact, read, verified and compiled: the signature is
//! checked before anything of it runs, even the compiler.

use super::Artifact;
use crate::runtime::{CompiledPlugin, Runtime};

/// Verifies the signature (before anything of the artifact runs, even the
/// compiler), then checks the ABI and compiles.
pub(super) fn load(
    runtime: &Runtime,
    trust: &crate::signing::Trust,
    artifact: &Artifact,
) -> Result<CompiledPlugin, String> {
    let r = match artifact {
        Artifact::Path(p) => {
            let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let sig_path = crate::signing::signature_path(p);
            let signature = std::fs::read_to_string(&sig_path).ok();
            trust
                .check_bytes(&p.display().to_string(), &bytes, signature.as_deref())
                .map_err(|e| e.to_string())?;
            runtime.load_bytes(p, &bytes)
        }
        Artifact::Bytes {
            name,
            bytes,
            signature,
        } => {
            trust
                .check_bytes(name, bytes, signature.as_deref())
                .map_err(|e| e.to_string())?;
            runtime.load_bytes(std::path::Path::new(name), bytes)
        }
    };
    r.map_err(|e| e.to_string())
}
