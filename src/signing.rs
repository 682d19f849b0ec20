//! Signed plugin artifacts, in the minisign format: `weir keygen`, `weir
//! sign` and `weir verify` write and read the same files as the `minisign`
//! tool (`<artifact>.minisig` next to the artifact, public keys as `.pub`
//! files or their base64 line), so either side verifies the other's
//! signatures.

use minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKey, SecretKeyBox, SignatureBox};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Why an artifact's signature is not good enough.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A key or signature file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key or signature is not in the minisign format.
    #[error("{what}: not a minisign {kind}: {message}")]
    Format {
        /// What was read.
        what: String,
        /// Key or signature.
        kind: &'static str,
        /// The parser's complaint.
        message: String,
    },
    /// The artifact has no signature.
    #[error("{0} is not signed (no {0}.minisig)")]
    Unsigned(String),
    /// The signature is by a key not in `trusted_keys`.
    #[error("{artifact} is signed by key {key_id}, which is not trusted")]
    Untrusted {
        /// The artifact.
        artifact: String,
        /// The signing key's id.
        key_id: String,
    },
    /// The signature does not match the artifact: it was changed after
    /// signing, or the signature was.
    #[error("{artifact}: the signature does not match ({message})")]
    Invalid {
        /// The artifact.
        artifact: String,
        /// The verifier's complaint.
        message: String,
    },
    /// Signing failed (an encrypted key with a wrong password, say).
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// The signature file of an artifact: `<artifact>.minisig`.
pub fn signature_path(artifact: &Path) -> PathBuf {
    let mut s = artifact.as_os_str().to_owned();
    s.push(".minisig");
    PathBuf::from(s)
}

fn read(path: &Path) -> Result<String, SignError> {
    std::fs::read_to_string(path).map_err(|source| SignError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<(), SignError> {
    std::fs::write(path, text).map_err(|source| SignError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A key's id as minisign prints it.
fn key_id(keynum: &[u8]) -> String {
    let mut id = [0u8; 8];
    id.copy_from_slice(&keynum[..8]);
    format!("{:016X}", u64::from_le_bytes(id))
}

/// Creates a key pair: `<stem>.pub` and `<stem>.key`. With a password the
/// secret key is encrypted (as `minisign -G`), without one it is not (as
/// `minisign -G -W`). Returns the public key's base64 line.
///
/// # Errors
/// When a file cannot be written, or already exists.
pub fn keygen(stem: &Path, password: Option<String>) -> Result<String, SignError> {
    let (pk_path, sk_path) = (stem.with_extension("pub"), stem.with_extension("key"));
    for p in [&pk_path, &sk_path] {
        if p.exists() {
            return Err(SignError::Io {
                path: p.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists; remove it first or choose another name",
                ),
            });
        }
    }
    let encrypted = password.is_some();
    let KeyPair { pk, sk } = match password {
        Some(p) => KeyPair::generate_encrypted_keypair(Some(p)),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| SignError::Sign(e.to_string()))?;
    let pk_box = pk.to_box().map_err(|e| SignError::Sign(e.to_string()))?;
    let comment = if encrypted {
        "weir secret key"
    } else {
        "weir secret key (not encrypted)"
    };
    let sk_box = sk
        .to_box(Some(comment))
        .map_err(|e| SignError::Sign(e.to_string()))?;
    write(&pk_path, &pk_box.to_string())?;
    write(&sk_path, &sk_box.to_string())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&sk_path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(pk.to_base64())
}

/// Signs `artifact` with the secret key in `key` and writes
/// `<artifact>.minisig`; returns its path.
///
/// # Errors
/// When a file cannot be read or written, or the key does not open.
pub fn sign(artifact: &Path, key: &Path, password: Option<String>) -> Result<PathBuf, SignError> {
    let sk_box = SecretKeyBox::from_string(&read(key)?).map_err(|e| SignError::Format {
        what: key.display().to_string(),
        kind: "secret key",
        message: e.to_string(),
    })?;
    let encrypted = sk_box
        .clone()
        .into_unencrypted_secret_key()
        .map(|k| k.is_encrypted())
        .unwrap_or(true);
    let sk = if encrypted {
        let password = password.ok_or_else(|| {
            SignError::Sign(format!(
                "{} is encrypted: set WEIR_KEY_PASSWORD",
                key.display()
            ))
        })?;
        SecretKey::from_box(sk_box, Some(password))
    } else {
        SecretKey::from_unencrypted_box(sk_box)
    }
    .map_err(|e| SignError::Sign(e.to_string()))?;
    let bytes = std::fs::read(artifact).map_err(|source| SignError::Io {
        path: artifact.to_owned(),
        source,
    })?;
    let name = artifact
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let trusted = format!(
        "timestamp:{}\tfile:{name}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    );
    let sig = minisign::sign(None, &sk, Cursor::new(&bytes), Some(&trusted), None)
        .map_err(|e| SignError::Sign(e.to_string()))?;
    let out = signature_path(artifact);
    write(&out, &sig.to_string())?;
    Ok(out)
}

/// A trusted public key.
#[derive(Clone)]
pub struct TrustedKey {
    key: PublicKey,
    /// Its id, as minisign prints it.
    pub id: String,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedKey({})", self.id)
    }
}

impl PartialEq for TrustedKey {
    fn eq(&self, other: &Self) -> bool {
        self.key.to_bytes() == other.key.to_bytes()
    }
}

impl TrustedKey {
    /// A key from its base64 line (`RW…`) or a minisign `.pub` file.
    ///
    /// # Errors
    /// When the file cannot be read or the key is not in minisign format.
    pub fn parse(spec: &str, base: &Path) -> Result<TrustedKey, SignError> {
        let key = if let Ok(k) = PublicKey::from_base64(spec.trim()) {
            k
        } else {
            let path = base.join(spec);
            let text = read(&path)?;
            PublicKeyBox::from_string(&text)
                .and_then(PublicKeyBox::into_public_key)
                .map_err(|e| SignError::Format {
                    what: path.display().to_string(),
                    kind: "public key",
                    message: e.to_string(),
                })?
        };
        let id = key_id(key.keynum());
        Ok(TrustedKey { key, id })
    }
}

/// Checks `bytes` against its minisign `signature` and the trusted keys;
/// returns the id of the key that signed it.
///
/// # Errors
/// [`SignError::Untrusted`] for a key not in `trusted`,
/// [`SignError::Invalid`] when the bytes or the signature were changed.
pub fn verify_bytes(
    name: &str,
    bytes: &[u8],
    signature: &str,
    trusted: &[TrustedKey],
) -> Result<String, SignError> {
    let sig = SignatureBox::from_string(signature).map_err(|e| SignError::Format {
        what: format!("{name}.minisig"),
        kind: "signature",
        message: e.to_string(),
    })?;
    let signer = key_id(sig.keynum());
    let key = trusted
        .iter()
        .find(|k| k.id == signer)
        .ok_or_else(|| SignError::Untrusted {
            artifact: name.to_string(),
            key_id: signer.clone(),
        })?;
    minisign::verify(&key.key, &sig, Cursor::new(bytes), true, false, false).map_err(|e| {
        SignError::Invalid {
            artifact: name.to_string(),
            message: e.to_string(),
        }
    })?;
    Ok(signer)
}

/// [`verify_bytes`] for a file and its `<file>.minisig`.
///
/// # Errors
/// [`SignError::Unsigned`] when there is no signature file, else as
/// [`verify_bytes`].
pub fn verify_file(artifact: &Path, trusted: &[TrustedKey]) -> Result<String, SignError> {
    let sig_path = signature_path(artifact);
    if !sig_path.exists() {
        return Err(SignError::Unsigned(artifact.display().to_string()));
    }
    let bytes = std::fs::read(artifact).map_err(|source| SignError::Io {
        path: artifact.to_owned(),
        source,
    })?;
    verify_bytes(
        &artifact.display().to_string(),
        &bytes,
        &read(&sig_path)?,
        trusted,
    )
}

/// What a pipeline trusts: its `trusted_keys`, and whether every plugin
/// must carry a signature by one of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trust {
    /// Keys whose signatures are accepted.
    pub keys: Vec<TrustedKey>,
    /// Refuse unsigned artifacts.
    pub require_signature: bool,
}

impl Trust {
    /// Checks an artifact file. A signature, when there is one and keys are
    /// configured, must verify; none is needed unless `require_signature`.
    /// Returns the signing key's id when a signature was verified.
    ///
    /// # Errors
    /// A [`SignError`] saying why the artifact is refused.
    pub fn check_file(&self, artifact: &Path) -> Result<Option<String>, SignError> {
        let sig_path = signature_path(artifact);
        let signature = if sig_path.exists() {
            Some(read(&sig_path)?)
        } else {
            None
        };
        let bytes = std::fs::read(artifact).map_err(|source| SignError::Io {
            path: artifact.to_owned(),
            source,
        })?;
        self.check_bytes(
            &artifact.display().to_string(),
            &bytes,
            signature.as_deref(),
        )
    }

    /// [`Trust::check_file`] for bytes and their signature's text.
    ///
    /// # Errors
    /// As [`Trust::check_file`].
    pub fn check_bytes(
        &self,
        name: &str,
        bytes: &[u8],
        signature: Option<&str>,
    ) -> Result<Option<String>, SignError> {
        match signature {
            None if self.require_signature => Err(SignError::Unsigned(name.to_string())),
            None => Ok(None),
            Some(_) if self.keys.is_empty() => Ok(None),
            Some(sig) => verify_bytes(name, bytes, sig, &self.keys).map(Some),
        }
    }
}
