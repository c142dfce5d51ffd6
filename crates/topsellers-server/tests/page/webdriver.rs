//! A tiny W3C WebDriver client for `tests/chromium.rs`: starts Debian's `chromedriver`, opens one
//! headless Chromium session, and speaks the WebDriver HTTP protocol over plain `std::net` (one
//! request per connection, JSON in and out). No browser-automation crate, no Node or Python.
//!
//! Every call is bounded by a timeout, and [`Browser`]'s `Drop` ends the session and kills the
//! driver's process group (which holds the browser it started), also when a test panics.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C key under which an element reference travels.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Bound of one WebDriver call (a navigation or a script included).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Chromium's flags for a quiet, reproducible headless run as root in a container.
pub const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1100",
];

/// `name` on the `PATH` (or in `/usr/bin`, where Debian puts both), if it is there.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A running chromedriver with one browser session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: Option<String>,
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port and opens a session of `chromium`, both
    /// within `timeout`.
    pub fn start(
        chromedriver: &Path,
        chromium: &Path,
        timeout: Duration,
    ) -> Result<Browser, String> {
        let port = free_port()?;
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that Drop can end it with every browser process it started.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromedriver.display()))?;
        let mut browser = Browser {
            driver,
            port,
            session: None,
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = browser.driver.try_wait() {
                return Err(format!("chromedriver exited at start ({status})"));
            }
            if let Ok((200, v)) = browser.raw("GET", "/status", None, Duration::from_secs(2)) {
                if v["value"]["ready"] == true {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "chromedriver not ready on port {port} after {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"script": 20_000, "pageLoad": 20_000, "implicit": 0},
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": CHROMIUM_FLAGS,
            },
        }}});
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(20));
        let created = browser.raw("POST", "/session", Some(&capabilities), left)?;
        match created {
            (200, v) => {
                let id = v["value"]["sessionId"]
                    .as_str()
                    .ok_or_else(|| format!("no session id in {v}"))?;
                browser.session = Some(id.to_string());
                Ok(browser)
            }
            (status, v) => Err(format!("new session failed ({status}): {v}")),
        }
    }

    /// One WebDriver command of the session; its `value`, or the driver's error.
    pub fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let session = self.session.as_deref().ok_or("no session")?;
        let (status, v) = self.raw(
            method,
            &format!("/session/{session}{path}"),
            body,
            CALL_TIMEOUT,
        )?;
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(format!("{method} {path} failed ({status}): {}", v["value"]))
        }
    }

    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.command("POST", "/url", Some(&json!({ "url": url })))
            .map(drop)
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn script(&self, script: &str) -> Result<Value, String> {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": []})),
        )
    }

    /// Clicks the element `css` selects, as a user would (scrolled into view, at its centre).
    pub fn click(&self, css: &str) -> Result<(), String> {
        let found = self.command(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": css})),
        )?;
        let id = found[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| format!("no element reference for {css}: {found}"))?
            .to_string();
        self.command("POST", &format!("/element/{id}/click"), Some(&json!({})))
            .map(drop)
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>, String> {
        let encoded = self.command("GET", "/screenshot", None)?;
        let encoded = encoded.as_str().ok_or("screenshot is not a string")?;
        base64_decode(encoded)
    }

    /// Evaluates `script` every 100 ms until `done` accepts its value, for at most `timeout`;
    /// the accepted value, or an error with the last one seen.
    pub fn wait_for(
        &self,
        what: &str,
        script: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.script(script) {
                Ok(v) if done(&v) => return Ok(v),
                Ok(v) => v,
                Err(e) => Value::String(e),
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out after {timeout:?} waiting for {what}; last seen: {last:#}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(u16, Value), String> {
        http_json(self.port, method, path, body, timeout)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver close the browser; killing the process group
        // then also ends whatever did not close, and the driver itself.
        if let Some(session) = self.session.take() {
            let _ = self.raw(
                "DELETE",
                &format!("/session/{session}"),
                None,
                Duration::from_secs(10),
            );
        }
        let group = format!("-{}", self.driver.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !killed {
            let _ = self.driver.kill();
        }
        let _ = self.driver.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// One HTTP/1.1 exchange with `127.0.0.1:port`, JSON both ways, within `timeout`.
fn http_json(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{method} {path}: {e}"))?;
    // chromedriver keeps connections open whatever the request says: read exactly one answer,
    // as its Content-Length (or chunked framing) delimits it, rather than until the peer closes.
    let mut response = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut framing: Option<(usize, String, Framing)> = None;
    loop {
        if framing.is_none() {
            if let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&response[..split]).to_string();
                framing = Some((split + 4, head.clone(), Framing::of(&head)));
            }
        }
        if let Some((body_start, _, how)) = &framing {
            if how.complete(&response[*body_start..]) {
                break;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{method} {path}: no answer within {timeout:?}"));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{method} {path}: {e}")),
        }
    }
    let (body_start, head, how) =
        framing.ok_or_else(|| format!("{method} {path}: malformed answer"))?;
    let mut content = response[body_start..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path}: no status in {head:?}"))?;
    match how {
        Framing::Chunked => content = dechunk(&content)?,
        Framing::Length(n) => content.truncate(n),
        Framing::UntilClose => {}
    }
    let value = if content.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&content)
            .map_err(|e| format!("{method} {path}: answer is not JSON ({e})"))?
    };
    Ok((status, value))
}

/// How the end of an HTTP/1.1 answer's body is found.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Framing {
    fn of(head: &str) -> Framing {
        let mut framing = Framing::UntilClose;
        for line in head.lines().skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
                return Framing::Chunked;
            }
            if name == "content-length" {
                if let Ok(n) = value.parse() {
                    framing = Framing::Length(n);
                }
            }
        }
        framing
    }

    fn complete(&self, body: &[u8]) -> bool {
        match self {
            Framing::Length(n) => body.len() >= *n,
            Framing::Chunked => dechunk(body).is_ok(),
            Framing::UntilClose => false,
        }
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.len());
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' => continue,
            _ => return Err(format!("not base64: byte {c}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[test]
fn base64_and_chunks_decode() {
    assert_eq!(base64_decode("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
    assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
    assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
    assert_eq!(
        dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
        b"abcde"
    );
}
