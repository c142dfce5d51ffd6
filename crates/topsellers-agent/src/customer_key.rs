//! The pseudonymous customer key: an optional stand-in for the customer id, made at the source.
//!
//! Off by default. With `[agent.customer_key]` configured, the agent reads the customer id from the field it
//! names (like any mapped field: nothing else of the line is read) and sends, beside the scrubbed event, only
//! `HMAC-SHA256(secret, customer id)`, truncated to 128 bits and written as 32 lowercase hex digits. The raw id
//! never leaves the agent. What it is for: counting distinct buyers of an item or a category later (and spotting
//! one buyer's repeated purchases) without anyone downstream learning who bought. Every intake makes it the same
//! way: a tailed line as it is parsed, `POST /v1/purchases` and the log4j2 appenders as they take the event, which
//! then spool only the key (`customer_key` in the spool line, passed on unchanged when the spool is read).
//!
//! **Why a keyed hash and not a plain one.** Customer ids (and e-mail addresses) come from small, guessable
//! sets: anyone holding a plain SHA-256 of an id can hash every candidate id and read the ids back, and can join
//! the data with any other data set hashed the same way. With a secret key only the agents can compute the
//! mapping; a topic, store or archive that leaks gives stable pseudonyms and nothing more. Changing the secret
//! changes every key (old and new keys no longer match): rotate it only when that is wanted. A pseudonymous key
//! is still personal data in law (GDPR Art. 4(5)): that is why it is opt-in.
//!
//! The secret comes from a file or an environment variable, never from the config file itself, so a config can
//! be shared, printed (`check-config`) and committed.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::path::PathBuf;

/// Shortest secret accepted, in bytes: below this a key can be guessed by brute force.
pub const MIN_SECRET_BYTES: usize = 16;

/// `[agent.customer_key]`: where the customer id is, and where the secret is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerKeyConfig {
    /// The key of every line that holds the customer id: a JSON key (dotted paths allowed, `customer.id`) or the
    /// key of a `key=value` pair. Lines without it get no customer key.
    pub field: String,
    /// A file whose content (one trailing newline removed) is the secret, e.g. made by `openssl rand -hex 32`
    /// and readable only by the agent.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Or: the environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
}

impl CustomerKeyConfig {
    /// Every problem with the section itself (the secret is read by [`CustomerKeyer::from_config`]).
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.field.trim().is_empty() {
            errors.push("agent.customer_key.field is empty; name the key that holds the customer id, such as \"customer.id\"".into());
        }
        if self.secret_file.is_some() == self.secret_env.is_some() {
            errors.push(
                "agent.customer_key needs exactly one of secret_file or secret_env (the secret never goes in the config file)"
                    .into(),
            );
        }
        errors
    }
}

/// A customer key: 32 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CustomerKey(String);

impl CustomerKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key made earlier, read back as it was written (the spool's `customer_key`): exactly 32 lowercase hex
    /// digits, or `None`, so nothing but a key can pass for one.
    pub(crate) fn from_hex(text: &str) -> Option<CustomerKey> {
        (text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| CustomerKey(text.to_string()))
    }
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomerKey({})", self.0)
    }
}

/// Makes customer keys with one secret. The `Debug` output never shows the secret.
#[derive(Clone)]
pub struct CustomerKeyer {
    /// The HMAC with the key already absorbed; cloned per id, so the key's padding is hashed once.
    prepared: Hmac<Sha256>,
}

impl fmt::Debug for CustomerKeyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomerKeyer { secret: **** }")
    }
}

impl CustomerKeyer {
    /// From the secret's bytes; refuses a secret shorter than [`MIN_SECRET_BYTES`].
    pub fn new(secret: &[u8]) -> Result<CustomerKeyer, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the customer key secret has {} bytes, fewer than {MIN_SECRET_BYTES}; make one with `openssl rand -hex 32`",
                secret.len()
            ));
        }
        let prepared = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|_| "the customer key secret is not usable as an HMAC key".to_string())?;
        Ok(CustomerKeyer { prepared })
    }

    /// Reads the secret named by `config` (file or environment variable). Errors name where it was looked for,
    /// never its content.
    pub fn from_config(config: &CustomerKeyConfig) -> Result<CustomerKeyer, String> {
        let secret = match (&config.secret_file, &config.secret_env) {
            (Some(path), None) => {
                let mut bytes = std::fs::read(path).map_err(|e| {
                    format!(
                        "agent.customer_key.secret_file {}: {e}; create it (e.g. `openssl rand -hex 32 > {0}`) readable by the agent",
                        path.display()
                    )
                })?;
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                bytes
            }
            (None, Some(var)) => std::env::var_os(var)
                .map(|v| v.into_encoded_bytes())
                .ok_or_else(|| {
                    format!("agent.customer_key.secret_env: the environment variable {var} is not set; set it to the secret")
                })?,
            _ => return Err(config.validate().join("; ")),
        };
        CustomerKeyer::new(&secret).map_err(|e| format!("agent.customer_key: {e}"))
    }

    /// The key of one customer id; `None` for an empty id (no customer, no key).
    pub fn key(&self, customer_id: &str) -> Option<CustomerKey> {
        let id = customer_id.trim();
        if id.is_empty() {
            return None;
        }
        let mut mac = self.prepared.clone();
        mac.update(id.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(32);
        for b in &digest[..16] {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
        }
        Some(CustomerKey(hex))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2 ("Jefe"), is too short a key for us; test case 1 has a 20-byte key.
    #[test]
    fn matches_rfc_4231_hmac_sha256_truncated() {
        let keyer = CustomerKeyer::new(&[0x0b; 20]).unwrap();
        assert_eq!(
            keyer.key("Hi There").unwrap().as_str(),
            "b0344c61d8db38535ca8afceaf0bf12b"
        );
    }

    #[test]
    fn same_id_same_key_other_secret_other_key() {
        let a = CustomerKeyer::new(b"0123456789abcdef0123").unwrap();
        let b = CustomerKeyer::new(b"another secret of enough bytes").unwrap();
        assert_eq!(a.key("C-1001"), a.key(" C-1001 "));
        assert_ne!(a.key("C-1001"), a.key("C-1002"));
        assert_ne!(a.key("C-1001"), b.key("C-1001"));
        assert_eq!(a.key("  "), None);
        assert!(CustomerKeyer::new(b"short").is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let keyer = CustomerKeyer::new(b"super-secret-value-1234").unwrap();
        assert!(!format!("{keyer:?}").contains("super"));
    }

    #[test]
    fn secret_from_file_or_env_never_inline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
        let from_file = CustomerKeyer::from_config(&CustomerKeyConfig {
            field: "customer.id".into(),
            secret_file: Some(file.clone()),
            secret_env: None,
        })
        .unwrap();
        let direct = CustomerKeyer::new(b"0123456789abcdef0123").unwrap();
        assert_eq!(from_file.key("C-1"), direct.key("C-1"));
        let both = CustomerKeyConfig {
            field: "id".into(),
            secret_file: Some(file),
            secret_env: Some("X".into()),
        };
        assert_eq!(both.validate().len(), 1);
        let missing = CustomerKeyConfig {
            field: "id".into(),
            secret_file: None,
            secret_env: Some("TOPSELLERS_TEST_SURELY_UNSET_SECRET".into()),
        };
        let err = CustomerKeyer::from_config(&missing).unwrap_err();
        assert!(err.contains("TOPSELLERS_TEST_SURELY_UNSET_SECRET"), "{err}");
    }
}
