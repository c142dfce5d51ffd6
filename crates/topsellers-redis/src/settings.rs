//! [`RedisSettings`]: where Redis is and how the store uses it. Config is data: the binary deserializes
//! it (unknown keys refused) and [`RedisSettings::validate`] reports every problem at once.

use redis::IntoConnectionInfo;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Default of [`RedisSettings::key_ttl_secs`]: a week.
pub const DEFAULT_KEY_TTL_SECS: u64 = 7 * 24 * 3600;

/// How to reach Redis and lay out the keys.
///
/// ```
/// use topsellers_redis::RedisSettings;
///
/// let standalone = RedisSettings::standalone("redis://127.0.0.1:6379");
/// assert!(standalone.validate().is_ok());
///
/// // A cluster is reached through any of its nodes; the others are found from there.
/// let cluster: RedisSettings = RedisSettings {
///     urls: vec!["redis://10.0.0.1:6379".into(), "redis://10.0.0.2:6379".into()],
///     cluster: true,
///     ..RedisSettings::default()
/// };
/// assert!(cluster.validate().is_ok());
///
/// // Every problem at once, each naming the setting and the fix.
/// let bad = RedisSettings { urls: vec!["http://x".into()], key_prefix: "a{b".into(), ..RedisSettings::default() };
/// assert_eq!(bad.validate().unwrap_err().len(), 2);
/// ```
// Serialize is for showing the config: show `masked_urls`, never the URLs themselves.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port[/db]`, `rediss://` for TLS (the system's certificate store
    /// checks the server), `redis+unix:///path` for a socket. Standalone: exactly one. Cluster: one or
    /// more of its nodes (TCP only; the user, password and TLS of the first apply to every node).
    pub urls: Vec<String>,
    /// `urls` name nodes of a Redis Cluster rather than one server.
    pub cluster: bool,
    /// First part of every key's hash tag: `{<key_prefix>:<namespace>}:...`. No `{` or `}`.
    pub key_prefix: String,
    /// Every key of a namespace expires this long after the last write to any of its partitions (every
    /// write, including `bind` and `claim`, sets it again); 0 = never. Pick it longer than any outage
    /// you want to resume from: once expired, the namespace starts over from nothing.
    pub key_ttl_secs: u64,
    /// How long to wait for a TCP connection (and TLS handshake).
    pub connect_timeout_ms: u64,
    /// How long to wait for one reply; a 20 MB checkpoint takes about 0.1 s on loopback.
    pub response_timeout_ms: u64,
    /// Connections per store handle, made when first needed: calls of one handle run in parallel up to
    /// this many (a results save need not wait behind a 20 MB checkpoint of another partition).
    pub pool_size: usize,
}

impl Default for RedisSettings {
    fn default() -> RedisSettings {
        RedisSettings {
            urls: vec!["redis://127.0.0.1:6379".into()],
            cluster: false,
            key_prefix: "topsellers".into(),
            key_ttl_secs: DEFAULT_KEY_TTL_SECS,
            connect_timeout_ms: 2_000,
            response_timeout_ms: 10_000,
            pool_size: 2,
        }
    }
}

// Passwords in the URLs must never reach a log.
impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("urls", &self.masked_urls())
            .field("cluster", &self.cluster)
            .field("key_prefix", &self.key_prefix)
            .field("key_ttl_secs", &self.key_ttl_secs)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl RedisSettings {
    /// The defaults, for one standalone server at `url`.
    pub fn standalone(url: &str) -> RedisSettings {
        RedisSettings {
            urls: vec![url.to_string()],
            ..RedisSettings::default()
        }
    }

    /// The defaults, for a Redis Cluster reached through `urls`.
    pub fn cluster<S: AsRef<str>>(urls: &[S]) -> RedisSettings {
        RedisSettings {
            urls: urls.iter().map(|u| u.as_ref().to_string()).collect(),
            cluster: true,
            ..RedisSettings::default()
        }
    }

    /// Every problem with these settings, each naming the setting and the fix; empty means fine.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.urls.is_empty() {
            problems.push(
                "urls is empty; give the Redis address, e.g. urls = [\"redis://127.0.0.1:6379\"]"
                    .to_string(),
            );
        }
        if !self.cluster && self.urls.len() > 1 {
            problems.push(format!(
                "urls lists {} addresses but cluster = false; give one URL for a standalone Redis, or set \
                 cluster = true if they are nodes of a Redis Cluster",
                self.urls.len()
            ));
        }
        for (i, url) in self.urls.iter().enumerate() {
            let shown = mask_url(url);
            match redis::parse_redis_url(url) {
                None => problems.push(format!(
                    "urls[{i}] {shown:?} is not a Redis URL; write redis://host:port, rediss://host:port for TLS \
                     or redis+unix:///path/to/socket"
                )),
                Some(parsed) => {
                    if let Err(e) = url.as_str().into_connection_info() {
                        problems.push(format!("urls[{i}] {shown:?} cannot be used: {e}"));
                    } else if self.cluster && !matches!(parsed.scheme(), "redis" | "rediss") {
                        problems.push(format!(
                            "urls[{i}] {shown:?}: Redis Cluster nodes are reached over TCP; write redis://host:port \
                             or rediss://host:port"
                        ));
                    } else if self.cluster && !parsed.path().trim_matches('/').is_empty() {
                        problems.push(format!(
                            "urls[{i}] {shown:?} selects a database, but Redis Cluster has only database 0; drop \
                             the /{} from the URL",
                            parsed.path().trim_matches('/')
                        ));
                    }
                }
            }
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}']) {
            problems.push(format!(
                "key_prefix {:?} must be non-empty and free of {{ and }} (it goes inside the keys' hash tag); \
                 e.g. key_prefix = \"topsellers\"",
                self.key_prefix
            ));
        }
        for (name, ms) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("response_timeout_ms", self.response_timeout_ms),
        ] {
            if ms == 0 {
                problems.push(format!(
                    "{name} is 0; give a time in milliseconds, e.g. {name} = 2000"
                ));
            }
        }
        if self.key_ttl_secs > i64::MAX as u64 / 1000 {
            problems.push(format!(
                "key_ttl_secs {} is too large; give at most {} (or 0 for keys that never expire)",
                self.key_ttl_secs,
                i64::MAX as u64 / 1000
            ));
        }
        if !(1..=64).contains(&self.pool_size) {
            problems.push(format!(
                "pool_size {} is out of range; give 1 to 64 connections per store",
                self.pool_size
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The URLs with any password replaced by `***`, for logs and errors.
    pub fn masked_urls(&self) -> Vec<String> {
        self.urls.iter().map(|u| mask_url(u)).collect()
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }

    /// The TTL as the scripts take it: milliseconds, `"0"` for none.
    pub(crate) fn ttl_ms_arg(&self) -> String {
        (self.key_ttl_secs * 1000).to_string()
    }
}

/// `url` with its password (if any) replaced by `***`. Text that does not parse as a URL is shown only
/// up to its last `@`, which is where credentials would end.
pub(crate) fn mask_url(url: &str) -> String {
    match redis::parse_redis_url(url) {
        Some(mut parsed) => {
            if parsed.password().is_some() {
                // Fails only for URLs that cannot carry credentials, which then have none to hide.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        None => match url.rfind('@') {
            Some(at) => format!("***{}", &url[at..]),
            None => url.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let s = RedisSettings::standalone("redis://app:s3cret@10.0.0.5:6380/2");
        assert_eq!(s.masked_urls(), vec!["redis://app:***@10.0.0.5:6380/2"]);
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("redis://app:***@10.0.0.5:6380/2"), "{debug}");
        assert_eq!(
            mask_url("rediss://:tok@host:6379"),
            "rediss://:***@host:6379"
        );
        assert_eq!(mask_url("nonsense://u:p@host"), "***@host");
        assert_eq!(mask_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        // Validation messages show URLs masked too.
        let bad = RedisSettings {
            urls: vec!["redis://u:topsecret@h:1".into(), "redis://h:2".into()],
            ..RedisSettings::default()
        };
        let problems = bad.validate().unwrap_err().join("\n");
        assert!(!problems.contains("topsecret"), "{problems}");
        assert!(problems.contains("set cluster = true"), "{problems}");
    }

    #[test]
    fn validation_reports_every_problem_with_its_fix() {
        let s = RedisSettings {
            urls: vec!["http://localhost".into(), "redis+unix:///tmp/r.sock".into()],
            cluster: true,
            key_prefix: String::new(),
            key_ttl_secs: u64::MAX,
            connect_timeout_ms: 0,
            response_timeout_ms: 0,
            pool_size: 0,
        };
        let problems = s.validate().unwrap_err();
        let text = problems.join("\n");
        for expected in [
            "urls[0] \"http://localhost\" is not a Redis URL",
            "urls[1] \"redis+unix:///tmp/r.sock\": Redis Cluster nodes are reached over TCP",
            "key_prefix \"\" must be non-empty",
            "connect_timeout_ms is 0",
            "response_timeout_ms is 0",
            "key_ttl_secs 18446744073709551615 is too large",
            "pool_size 0 is out of range",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert_eq!(problems.len(), 7, "{text}");

        let empty = RedisSettings {
            urls: vec![],
            ..RedisSettings::default()
        };
        assert!(empty.validate().unwrap_err()[0].starts_with("urls is empty"));
        let db_in_cluster = RedisSettings::cluster(&["redis://h:7001/3"]);
        assert!(db_in_cluster.validate().unwrap_err()[0].contains("drop the /3"));
        assert!(RedisSettings::default().validate().is_ok());
        assert!(RedisSettings::standalone("redis+unix:///run/redis.sock")
            .validate()
            .is_ok());
    }

    #[test]
    fn settings_deserialize_with_defaults_and_refuse_unknown_keys() {
        #[derive(Deserialize)]
        struct Wrapper {
            redis: RedisSettings,
        }
        let w: Wrapper = toml_like(
            r#"{"redis": {"urls": ["redis://h:7001"], "cluster": true, "key_ttl_secs": 0}}"#,
        );
        assert_eq!(
            w.redis,
            RedisSettings {
                urls: vec!["redis://h:7001".into()],
                cluster: true,
                key_ttl_secs: 0,
                ..RedisSettings::default()
            }
        );
        let err = serde_json_err(r#"{"urls": [], "ttl": 5}"#);
        assert!(err.contains("unknown field `ttl`"), "{err}");
    }

    fn toml_like<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    fn serde_json_err(json: &str) -> String {
        serde_json::from_str::<RedisSettings>(json)
            .unwrap_err()
            .to_string()
    }
}
