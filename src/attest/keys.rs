//! Signing keys: PEM private keys (PKCS#8, SEC1, cosign's password-encrypted ones) and PEM public keys, all ECDSA P-256.
//!
//! Pure functions of the file's text (and the password): reading the file
//! and asking for the password is the caller's job. Not for signing or the
//! signature format (`cosign`).

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};

/// PEM type of the keys cosign 2 and later write (`cosign generate-key-pair`).
pub const SIGSTORE_ENCRYPTED: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM type of the keys cosign 1 wrote.
pub const COSIGN_ENCRYPTED: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The most memory scrypt may use for a key (128·r·N bytes): cosign's own
/// parameters need 32 MiB; a file asking for more is refused, not obeyed.
const MAX_SCRYPT_BYTES: u64 = 512 * 1024 * 1024;

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no PEM-encoded {wanted}", path.display())]
    NoPem { path: PathBuf, wanted: &'static str },
    #[error("{} is a PEM `{found}`, not a {wanted}", path.display())]
    Unsupported {
        path: PathBuf,
        found: String,
        wanted: &'static str,
    },
    #[error("{} is not a usable ECDSA P-256 key: {problem}", path.display())]
    Malformed { path: PathBuf, problem: String },
    #[error("{} is encrypted and no password was given", path.display())]
    NoPassword { path: PathBuf },
    #[error("the password does not open {}", path.display())]
    WrongPassword { path: PathBuf },
    #[error("cannot read the password for {}", path.display())]
    Prompt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl KeyError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            KeyError::Read { .. } => "check the path given with --key/--sign-key".into(),
            KeyError::NoPem { .. } | KeyError::Unsupported { .. } | KeyError::Malformed { .. } => {
                "give an ECDSA P-256 key: `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem` (public: `openssl pkey -in key.pem -pubout`), or cosign's `cosign generate-key-pair`".into()
            }
            KeyError::NoPassword { .. } => {
                "set COSIGN_PASSWORD to the key's password, or run on a terminal to be asked".into()
            }
            KeyError::WrongPassword { .. } => {
                "set COSIGN_PASSWORD to the password the key was created with (an empty one is allowed)".into()
            }
            KeyError::Prompt { .. } => "set COSIGN_PASSWORD instead of typing it".into(),
        }
    }
}

/// A key's password; never shown (its `Debug` is redacted).
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A private key file as read: usable as it is, or still locked by a password.
pub enum PrivateKeyPem {
    Plain(SigningKey),
    Encrypted(EncryptedKey),
}

/// cosign's encrypted key: scrypt parameters, secretbox nonce and ciphertext.
pub struct EncryptedKey {
    path: PathBuf,
    log_n: u8,
    r: u32,
    p: u32,
    salt: Vec<u8>,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// The JSON inside cosign's PEM block (go-securesystemslib's `encrypted` format).
#[derive(serde::Deserialize)]
struct EncryptedJson {
    kdf: KdfJson,
    cipher: CipherJson,
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct KdfJson {
    name: String,
    params: ScryptJson,
    salt: String,
}

#[derive(serde::Deserialize)]
struct ScryptJson {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Deserialize)]
struct CipherJson {
    name: String,
    nonce: String,
}

/// Parses a private key file's text: PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, or cosign's encrypted key.
pub fn parse_private_key(path: &Path, text: &str) -> Result<PrivateKeyPem, KeyError> {
    const WANTED: &str = "private key";
    let malformed = |problem: String| KeyError::Malformed {
        path: path.to_path_buf(),
        problem,
    };
    let blocks = pem_blocks(text);
    // openssl's `ecparam -genkey` puts an `EC PARAMETERS` block first.
    let Some((label, block)) = blocks.iter().find(|(l, _)| l.contains("PRIVATE KEY")) else {
        return Err(no_block(path, &blocks, WANTED));
    };
    match label.as_str() {
        "PRIVATE KEY" => SigningKey::from_pkcs8_pem(block)
            .map(PrivateKeyPem::Plain)
            .map_err(|e| malformed(e.to_string())),
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(block)
            .map(|k| PrivateKeyPem::Plain(SigningKey::from(k)))
            .map_err(|e| malformed(e.to_string())),
        SIGSTORE_ENCRYPTED | COSIGN_ENCRYPTED => {
            let (_, body) =
                pem::decode_vec(block.as_bytes()).map_err(|e| malformed(e.to_string()))?;
            EncryptedKey::parse(path, &body).map(PrivateKeyPem::Encrypted)
        }
        other => Err(KeyError::Unsupported {
            path: path.to_path_buf(),
            found: other.to_string(),
            wanted: WANTED,
        }),
    }
}

/// The error for a key file with no PEM block of the kind `wanted`: it names the first block found, if any.
fn no_block(path: &Path, blocks: &[(String, String)], wanted: &'static str) -> KeyError {
    match blocks.first() {
        Some((label, _)) => KeyError::Unsupported {
            path: path.to_path_buf(),
            found: label.clone(),
            wanted,
        },
        None => KeyError::NoPem {
            path: path.to_path_buf(),
            wanted,
        },
    }
}

/// Parses a PEM SPKI `PUBLIC KEY` file's text.
pub fn parse_public_key(path: &Path, text: &str) -> Result<VerifyingKey, KeyError> {
    const WANTED: &str = "public key";
    let blocks = pem_blocks(text);
    let Some((_, block)) = blocks.iter().find(|(l, _)| l == "PUBLIC KEY") else {
        return Err(no_block(path, &blocks, WANTED));
    };
    VerifyingKey::from_public_key_pem(block).map_err(|e| KeyError::Malformed {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

impl EncryptedKey {
    fn parse(path: &Path, body: &[u8]) -> Result<EncryptedKey, KeyError> {
        let malformed = |problem: String| KeyError::Malformed {
            path: path.to_path_buf(),
            problem: format!("cosign key: {problem}"),
        };
        let json: EncryptedJson =
            serde_json::from_slice(body).map_err(|e| malformed(format!("not its JSON ({e})")))?;
        if json.kdf.name != "scrypt" {
            return Err(malformed(format!("unknown kdf `{}`", json.kdf.name)));
        }
        if json.cipher.name != "nacl/secretbox" {
            return Err(malformed(format!("unknown cipher `{}`", json.cipher.name)));
        }
        let ScryptJson { n, r, p } = json.kdf.params;
        if !n.is_power_of_two() || n < 2 {
            return Err(malformed(format!("scrypt N={n} is not a power of two")));
        }
        if 128u64.saturating_mul(u64::from(r)).saturating_mul(n) > MAX_SCRYPT_BYTES
            || r == 0
            || p == 0
        {
            return Err(malformed(format!(
                "scrypt parameters N={n} r={r} p={p} are out of range"
            )));
        }
        let decode = |what: &str, text: &str| {
            STANDARD
                .decode(text)
                .map_err(|e| malformed(format!("{what} is not base64 ({e})")))
        };
        let nonce = decode("cipher.nonce", &json.cipher.nonce)?;
        if nonce.len() != 24 {
            return Err(malformed(format!(
                "the nonce has {} bytes, not 24",
                nonce.len()
            )));
        }
        Ok(EncryptedKey {
            path: path.to_path_buf(),
            log_n: n.trailing_zeros() as u8,
            r,
            p,
            salt: decode("kdf.salt", &json.kdf.salt)?,
            nonce,
            ciphertext: decode("ciphertext", &json.ciphertext)?,
        })
    }

    /// Opens the key with `password` (CPU: scrypt as the file asks, 32 MiB and a fraction of a second for cosign's).
    pub fn decrypt(&self, password: &Password) -> Result<SigningKey, KeyError> {
        let malformed = |problem: String| KeyError::Malformed {
            path: self.path.clone(),
            problem: format!("cosign key: {problem}"),
        };
        let params = scrypt::Params::new(self.log_n, self.r, self.p, 32)
            .map_err(|e| malformed(format!("scrypt parameters: {e}")))?;
        let mut secret = [0u8; 32];
        scrypt::scrypt(password.0.as_bytes(), &self.salt, &params, &mut secret)
            .map_err(|e| malformed(format!("scrypt: {e}")))?;
        let cipher = XSalsa20Poly1305::new(&secret.into());
        let der = cipher
            .decrypt(Nonce::from_slice(&self.nonce), self.ciphertext.as_slice())
            .map_err(|_| KeyError::WrongPassword {
                path: self.path.clone(),
            })?;
        SigningKey::from_pkcs8_der(&der).map_err(|e| malformed(format!("the opened key: {e}")))
    }
}

/// `(label, block text)` of each PEM block in `text`, in order.
fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let block_end = start + end + end_marker.len();
        blocks.push((label.to_string(), format!("{}\n", &rest[start..block_end])));
        rest = &rest[block_end..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`
    // and `openssl ec -in pkcs8.pem -out sec1.pem`, `openssl pkey -pubout`.
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTEJk0/cEcfjWASCS
CROgTMx/WzpHUKi7jzoYV67x48ihRANCAAT3+sjnkr/mxfp9mKG/pUmyjOGRlnSI
LGLj+3BEdVwYo2nJ27R75+SrDWvCg5BG/GNFbx9CZ+89tYAQPn80XYca
-----END PRIVATE KEY-----
";
    const SEC1: &str = "-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIExCZNP3BHH41gEgkgkToEzMf1s6R1Cou486GFeu8ePIoAoGCCqGSM49
AwEHoUQDQgAE9/rI55K/5sX6fZihv6VJsozhkZZ0iCxi4/twRHVcGKNpydu0e+fk
qw1rwoOQRvxjRW8fQmfvPbWAED5/NF2HGg==
-----END EC PRIVATE KEY-----
";
    const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9/rI55K/5sX6fZihv6VJsozhkZZ0
iCxi4/twRHVcGKNpydu0e+fkqw1rwoOQRvxjRW8fQmfvPbWAED5/NF2HGg==
-----END PUBLIC KEY-----
";

    fn plain(text: &str) -> SigningKey {
        match parse_private_key(Path::new("k.pem"), text) {
            Ok(PrivateKeyPem::Plain(key)) => key,
            Ok(PrivateKeyPem::Encrypted(_)) => panic!("not encrypted"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn pkcs8_and_sec1_give_the_same_key_and_it_matches_the_public_key() {
        let a = plain(PKCS8);
        let b = plain(SEC1);
        assert_eq!(a.to_bytes(), b.to_bytes());
        let public = parse_public_key(Path::new("k.pub"), PUBLIC).map_err(|e| e.to_string());
        assert_eq!(public, Ok(*a.verifying_key()));
    }

    #[test]
    fn a_public_key_is_not_a_private_key_and_garbage_is_neither() {
        let err = parse_private_key(Path::new("k.pub"), PUBLIC)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("k.pub is a PEM `PUBLIC KEY`, not a private key")
        );
        let err = parse_public_key(Path::new("x"), "hello")
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("x holds no PEM-encoded public key"));
        let broken = PKCS8.replace("MIGHAgEA", "MIGHAgEB");
        assert!(matches!(
            parse_private_key(Path::new("k"), &broken),
            Err(KeyError::Malformed { .. })
        ));
    }

    /// A cosign key made as cosign makes one (scrypt N=32768 r=8 p=1 over
    /// the password, secretbox over the PKCS#8 DER), here with Python's
    /// hashlib.scrypt and PyNaCl from the PKCS8 key above, password "s3cret".
    const COSIGN: &str = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiJBQUVDQXdRRkJnY0lDUW9MREEwT0R4QVJFaE1VRlJZ
WEdCa2FHeHdkSGg4PSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJBZ0lDQWdJQ0FnSUNBZ0lDQWdJQ0FnSUNBZ0lDQWdJQyJ9LCJj
aXBoZXJ0ZXh0IjoiR1lmSTBrWWRCOWliemRmWU9OZlo3QWN6RlFsQ1Y5QzIrOEY4
OVc1a1BRVEEyeVk5Qi9yVjcwWUJ0R29ZdjFHN3lxdFdMREtmZEJrQ0o4cVdudTVJ
U1d0enNLd1c2MDNqM2Y2UkRDQXpBSUdzOUtYc1Q4enVhSGhIeGx5eGVHNzJpdzNk
L1ExWURBS05RN2xyK1V6Y3NRMHZCbW1aZXNZRTVDZ3M3MTNtVXJHbEljbWRXd0h3
RjFTSGVad3BQV1E0Ym1wSC9ZZG1uSjNBVGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
";

    #[test]
    fn a_cosign_key_opens_with_its_password_only() {
        let Ok(PrivateKeyPem::Encrypted(locked)) =
            parse_private_key(Path::new("cosign.key"), COSIGN)
        else {
            panic!("not read as an encrypted key");
        };
        let opened = locked
            .decrypt(&Password("s3cret".into()))
            .map_err(|e| e.to_string());
        assert_eq!(opened.map(|k| k.to_bytes()), Ok(plain(PKCS8).to_bytes()));
        let wrong = locked
            .decrypt(&Password("guess".into()))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            wrong.as_deref(),
            Some("the password does not open cosign.key")
        );
    }

    #[test]
    fn a_password_never_shows_in_debug() {
        assert_eq!(
            format!("{:?}", Password("hunter2".into())),
            "Password(<redacted>)"
        );
    }
}
