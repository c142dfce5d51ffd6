//! The `[server]` section of the product configuration.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Settings of the HTTP server. Every key has a default, so an empty `[server]` section (or none) is a
/// working configuration that serves reads and refuses writes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on, `host:port`. Default `127.0.0.1:8080`: loopback only, so a fresh install
    /// is not reachable from the network until someone decides it should be.
    pub listen: String,
    /// Bearer token that `POST /v1/purchases` requires (`Authorization: Bearer <token>`), at least 16
    /// printable ASCII characters (`openssl rand -hex 24` makes a good one). Unset (the default)
    /// disables the endpoint: it answers 403 and says to set `server.auth_token`. Never printed:
    /// `Debug` masks it.
    pub auth_token: Option<String>,
    /// Largest accepted request body in bytes; a bigger body gets 413. Default 8 MiB.
    pub max_body_bytes: usize,
    /// Time a purchase submission may take (reading the body and logging it durably), in
    /// milliseconds; a slower one gets 503 and may be retried. Default 10 000.
    pub request_timeout_ms: u64,
    /// Purchase submissions handled at once; more get 503 with `Retry-After` (load shedding). Reads
    /// are never shed. Default 64.
    pub max_concurrent_posts: usize,
    /// How often the web page fetches fresh results, in seconds. Default 5.
    pub page_refresh_secs: u32,
    /// A server that follows a results store (`topsellers api`) calls its results stale when the
    /// last successful refresh is older than this, in milliseconds, or when the last refresh
    /// failed; stale answers are still served, marked `X-Results-Stale` and `"stale": true`.
    /// Keep it a few times `cluster.refresh_interval_ms`, so that one slow refresh is not an
    /// alarm. Servers without a results store are never stale. Default 5000.
    pub stale_after_ms: u64,
    /// `max-age` of `/v1/top` and `/v1/categories` answers, in seconds: how long browsers and
    /// CDNs may reuse one without asking. Set it near the results' refresh interval (rounded up;
    /// at least 1): longer only hides fresh results. Default 1.
    pub cache_max_age_secs: u32,
    /// `stale-while-revalidate` (RFC 5861), in seconds: a cache may answer with an expired answer
    /// this long while it fetches the new one in the background, so no client waits for the
    /// revalidation. 0 leaves the directive out. Default 10.
    pub cache_stale_while_revalidate_secs: u32,
    /// `stale-if-error` (RFC 5861), in seconds: a cache may keep answering with an expired answer
    /// this long when every API server fails or cannot be reached. A stale list beats an error
    /// page, and results an hour old are acceptable, hence the default 3600. 0 leaves it out.
    pub cache_stale_if_error_secs: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_string(),
            auth_token: None,
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout_ms: 10_000,
            max_concurrent_posts: 64,
            page_refresh_secs: 5,
            stale_after_ms: 5000,
            cache_max_age_secs: 1,
            cache_stale_while_revalidate_secs: 10,
            cache_stale_if_error_secs: 3600,
        }
    }
}

/// Upper bounds beyond which a value is certainly a typo (a unit mix-up) rather than a choice.
const MAX_BODY_BYTES: usize = 1024 * 1024 * 1024;
const MAX_REQUEST_TIMEOUT_MS: u64 = 600_000;
const MAX_CONCURRENT_POSTS: usize = 100_000;
const MAX_PAGE_REFRESH_SECS: u32 = 3600;
const MAX_STALE_AFTER_MS: u64 = 24 * 3_600_000;
const MAX_CACHE_MAX_AGE_SECS: u32 = 3600;
const MAX_CACHE_STALE_SECS: u32 = 7 * 86_400;
/// Shortest accepted `server.auth_token`: anything shorter is a password someone typed, not a
/// random token, and the endpoint is reachable by anyone who can guess it.
pub(crate) const MIN_AUTH_TOKEN_CHARS: usize = 16;

impl ServerConfig {
    /// Every problem of the section at once, each naming `server.<key>` and the fix. Empty when the
    /// configuration is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_host_port(&self.listen) {
            problems.push(format!(
                "server.listen = {:?} is not an address; write host:port, like 127.0.0.1:8080 or [::]:8080",
                self.listen
            ));
        }
        if let Some(token) = &self.auth_token {
            if token.is_empty() {
                problems.push(
                    "server.auth_token is empty; set a long random token, or remove the key to disable POST /v1/purchases"
                        .to_string(),
                );
            } else if token.chars().count() < MIN_AUTH_TOKEN_CHARS {
                problems.push(format!(
                    "server.auth_token is {} characters long, too short to resist guessing; use at least {MIN_AUTH_TOKEN_CHARS} random characters, e.g. the output of `openssl rand -hex 24`",
                    token.chars().count()
                ));
            } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
                // The token travels in an HTTP header; anything else could not be sent reliably.
                problems.push(
                    "server.auth_token contains spaces or non-ASCII characters; use printable ASCII only (for example hex or base64)"
                        .to_string(),
                );
            }
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_BODY_BYTES {
            problems.push(format!(
                "server.max_body_bytes = {} is out of range; use 1 to {MAX_BODY_BYTES} (default 8388608, 8 MiB)",
                self.max_body_bytes
            ));
        }
        if self.request_timeout_ms == 0 || self.request_timeout_ms > MAX_REQUEST_TIMEOUT_MS {
            problems.push(format!(
                "server.request_timeout_ms = {} is out of range; use 1 to {MAX_REQUEST_TIMEOUT_MS} (default 10000)",
                self.request_timeout_ms
            ));
        }
        if self.max_concurrent_posts == 0 || self.max_concurrent_posts > MAX_CONCURRENT_POSTS {
            problems.push(format!(
                "server.max_concurrent_posts = {} is out of range; use 1 to {MAX_CONCURRENT_POSTS} (default 64); to disable POST, remove server.auth_token",
                self.max_concurrent_posts
            ));
        }
        if self.page_refresh_secs == 0 || self.page_refresh_secs > MAX_PAGE_REFRESH_SECS {
            problems.push(format!(
                "server.page_refresh_secs = {} is out of range; use 1 to {MAX_PAGE_REFRESH_SECS} (default 5)",
                self.page_refresh_secs
            ));
        }
        if self.stale_after_ms == 0 || self.stale_after_ms > MAX_STALE_AFTER_MS {
            problems.push(format!(
                "server.stale_after_ms = {} is out of range; use 1 to {MAX_STALE_AFTER_MS} (default 5000), a few times cluster.refresh_interval_ms",
                self.stale_after_ms
            ));
        }
        if self.cache_max_age_secs == 0 || self.cache_max_age_secs > MAX_CACHE_MAX_AGE_SECS {
            problems.push(format!(
                "server.cache_max_age_secs = {} is out of range; use 1 to {MAX_CACHE_MAX_AGE_SECS} (default 1), about the results' refresh interval",
                self.cache_max_age_secs
            ));
        }
        for (key, value, default) in [
            (
                "cache_stale_while_revalidate_secs",
                self.cache_stale_while_revalidate_secs,
                10,
            ),
            (
                "cache_stale_if_error_secs",
                self.cache_stale_if_error_secs,
                3600,
            ),
        ] {
            if value > MAX_CACHE_STALE_SECS {
                problems.push(format!(
                    "server.{key} = {value} is out of range; use 0 (leave the directive out) to {MAX_CACHE_STALE_SECS} (default {default})"
                ));
            }
        }
        problems
    }

    /// The `Cache-Control` of every tagged `/v1/top` and `/v1/categories` answer (also on 304s),
    /// like `public, max-age=1, stale-while-revalidate=10, stale-if-error=3600`.
    ///
    /// Why these directives: `public` because answers hold no personal data and are the same for
    /// every client, so CDNs may share them; a short `max-age` because results move every second
    /// and the `ETag` (named after the result version) makes revalidation a cheap 304;
    /// `stale-while-revalidate` so that a busy CDN never makes a shopper wait for that
    /// revalidation; and `stale-if-error` because a stale list is fine and an error page is not:
    /// when the API servers themselves are down, a CDN keeps showing the last lists. Staleness of
    /// the *results* (the store being unreachable) does not change the header: those answers are
    /// still the best there is, and are marked by `X-Results-Stale` instead.
    pub fn cache_control(&self) -> String {
        let mut value = format!("public, max-age={}", self.cache_max_age_secs.max(1));
        if self.cache_stale_while_revalidate_secs > 0 {
            value.push_str(&format!(
                ", stale-while-revalidate={}",
                self.cache_stale_while_revalidate_secs
            ));
        }
        if self.cache_stale_if_error_secs > 0 {
            value.push_str(&format!(
                ", stale-if-error={}",
                self.cache_stale_if_error_secs
            ));
        }
        value
    }
}

/// `host:port` with a numeric port; the host may be a name (resolved when binding) or an IP literal.
fn is_host_port(listen: &str) -> bool {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match listen.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && !host.contains([':', '/', ' ']) && port.parse::<u16>().is_ok()
        }
        None => false,
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("max_concurrent_posts", &self.max_concurrent_posts)
            .field("page_refresh_secs", &self.page_refresh_secs)
            .field("stale_after_ms", &self.stale_after_ms)
            .field("cache_max_age_secs", &self.cache_max_age_secs)
            .field(
                "cache_stale_while_revalidate_secs",
                &self.cache_stale_while_revalidate_secs,
            )
            .field("cache_stale_if_error_secs", &self.cache_stale_if_error_secs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ServerConfig::default().validate(), Vec::<String>::new());
        let c = ServerConfig {
            listen: "localhost:9000".into(),
            auth_token: Some("s3cr3t-token-0123".into()),
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Vec::<String>::new());
    }

    #[test]
    fn reports_every_problem_naming_the_key() {
        let c = ServerConfig {
            listen: "8080".into(),
            auth_token: Some(String::new()),
            max_body_bytes: 0,
            request_timeout_ms: 0,
            max_concurrent_posts: 0,
            page_refresh_secs: 0,
            stale_after_ms: 0,
            cache_max_age_secs: 0,
            cache_stale_while_revalidate_secs: u32::MAX,
            cache_stale_if_error_secs: 8 * 86_400,
        };
        let problems = c.validate();
        for key in [
            "server.listen",
            "server.auth_token",
            "server.max_body_bytes",
            "server.request_timeout_ms",
            "server.max_concurrent_posts",
            "server.page_refresh_secs",
            "server.stale_after_ms",
            "server.cache_max_age_secs",
            "server.cache_stale_while_revalidate_secs",
            "server.cache_stale_if_error_secs",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{key} missing from {problems:?}"
            );
        }
        assert_eq!(problems.len(), 10);
    }

    #[test]
    fn cache_control_follows_the_settings() {
        assert_eq!(
            ServerConfig::default().cache_control(),
            "public, max-age=1, stale-while-revalidate=10, stale-if-error=3600"
        );
        let c = ServerConfig {
            cache_max_age_secs: 2,
            cache_stale_while_revalidate_secs: 0,
            cache_stale_if_error_secs: 600,
            ..ServerConfig::default()
        };
        assert_eq!(c.cache_control(), "public, max-age=2, stale-if-error=600");
        let c = ServerConfig {
            cache_stale_if_error_secs: 0,
            ..c
        };
        assert_eq!(c.cache_control(), "public, max-age=2");
        assert!(axum::http::HeaderValue::from_str(&c.cache_control()).is_ok());
    }

    #[test]
    fn token_with_space_is_rejected() {
        let c = ServerConfig {
            auth_token: Some("two words, long enough".into()),
            ..ServerConfig::default()
        };
        assert_eq!(c.validate().len(), 1);
    }

    #[test]
    fn short_token_is_rejected_with_the_fix() {
        for short in ["t0ken", "fifteen-chars-x"] {
            let c = ServerConfig {
                auth_token: Some(short.into()),
                ..ServerConfig::default()
            };
            let problems = c.validate();
            assert_eq!(problems.len(), 1, "{short}: {problems:?}");
            assert!(problems[0].starts_with("server.auth_token"), "{problems:?}");
            assert!(problems[0].contains("at least 16"), "{problems:?}");
            assert!(problems[0].contains("openssl rand -hex 24"), "{problems:?}");
            assert!(
                !problems[0].contains(short),
                "the token must not be printed"
            );
        }
        let c = ServerConfig {
            auth_token: Some("sixteen-chars-xx".into()),
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Vec::<String>::new());
    }

    #[test]
    fn debug_masks_the_token() {
        let c = ServerConfig {
            auth_token: Some("very-secret-value".into()),
            ..ServerConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn toml_like_input_rejects_unknown_keys_and_fills_defaults() {
        let c: ServerConfig = serde_json::from_str(r#"{"listen":"0.0.0.0:80"}"#).unwrap();
        assert_eq!(c.listen, "0.0.0.0:80");
        assert_eq!(c.max_body_bytes, 8 * 1024 * 1024);
        let err = serde_json::from_str::<ServerConfig>(r#"{"listn":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
