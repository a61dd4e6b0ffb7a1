//! What the daemon tests share: the `backupd` binary, a running daemon
//! (killed on drop), raw HTTP requests, system files, promtool, metrics.

use crate::common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "s3cret-daemon-token";

/// The `backupd` binary, built once.
pub fn daemon_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-q", "-p", "backupd", "--bin", "backupd"])
            .current_dir(&root)
            .status()
            .expect("run cargo build")
            .success();
        assert!(ok, "building backupd failed");
        bin().with_file_name("backupd")
    })
    .clone()
}

/// A running daemon; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub use testkit::free_port;

impl Daemon {
    pub fn start(env: &Env, config: &Path) -> Daemon {
        let port = free_port();
        let log = env.path(&format!("backupd-{port}.log"));
        let mut c = Command::new(daemon_bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("BACKUP") || k.starts_with("AWS_") {
                c.env_remove(k);
            }
        }
        for (k, v) in &env.extra {
            c.env(k, v);
        }
        let child = c
            .args([
                "--config",
                config.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, port, log };
        d.wait_for("the HTTP port", Duration::from_secs(30), || {
            d.get("/healthz").is_some()
        });
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A request; (status, body).
    pub fn request(&self, method: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
        http(self.port, method, path, token)
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request("GET", path, None)
    }

    pub fn json(&self, path: &str) -> Value {
        let (code, body) = self.get(path).expect("the daemon answers");
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    pub fn wait_for(&self, what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !ok() {
            assert!(
                t0.elapsed() < limit,
                "waited {limit:?} for {what}; daemon log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn job<'a>(status: &'a Value, name: &str) -> &'a Value {
        status["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap()
    }

    pub fn successes(&self, name: &str) -> u64 {
        Self::job(&self.json("/v1/status"), name)["totals"]["success"]
            .as_u64()
            .unwrap_or(0)
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

/// A system file with a database and a tree, and `schedules` (TOML).
pub fn write_config(env: &Env, conn: &str, schedules: &str) -> PathBuf {
    let pw = env.path("password");
    std::fs::write(&pw, env.password.as_deref().unwrap()).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = env.path("token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "repository = {:?}\npassword_file = {:?}\nstate_dir = {:?}\n\n[[postgres]]\nname = \"dms\"\nconnection = {conn:?}\n\n\
         [[files]]\nname = \"app\"\npath = {:?}\n\n[retention]\nkeep_last = 2\n\n[daemon]\ntoken_file = {:?}\n\n{schedules}",
        env.repo,
        pw.display().to_string(),
        env.path("state").display().to_string(),
        env.path("app").display().to_string(),
        token.display().to_string(),
    );
    let p = env.path("backup.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub fn app_tree(env: &Env) {
    let app = env.path("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("main.js"), "console.log('v1')\n").unwrap();
    std::fs::write(app.join("asset.bin"), random_bytes(5, 200_000)).unwrap();
}

pub fn promtool(metrics: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-test-deps.sh installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn metric(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name_and_labels} in\n{metrics}"))
}

/// An HTTP/1.1 request to 127.0.0.1:`port` without a body; (status, body).
/// Chunked answers are not decoded (the daemon and Prometheus send lengths).
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// One request a [`Capture`] received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub body: String,
}

/// A tiny HTTP server on loopback that records every request and answers
/// 200 (a webhook receiver, a healthchecks-type ping endpoint).
pub struct Capture {
    pub port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Captured>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Capture {
    pub fn start() -> Capture {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        if let Some(c) = read_request(s) {
                            seen2.lock().unwrap().push(c);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Capture {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn seen(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(mut s: TcpStream) -> Option<Captured> {
    s.set_nonblocking(false).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
    let mut words = head.split_whitespace();
    Some(Captured {
        method: words.next()?.to_string(),
        path: words.next()?.to_string(),
        body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
    })
}

/// A real Prometheus server scraping one target every second; killed on drop.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Prometheus {
    pub fn start(env: &Env, target_port: u16) -> Prometheus {
        let dir = env.path("prometheus");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: backupd\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect(
                "prometheus (scripts/install-test-deps.sh installs Debian's prometheus package)",
            );
        Prometheus {
            child,
            port,
            log: dir.join("log"),
        }
    }

    /// What it says of its targets, and its log: for failure messages.
    pub fn diagnostics(&self) -> String {
        let targets = http(self.port, "GET", "/api/v1/targets", None)
            .map(|(c, b)| format!("{c} {b}"))
            .unwrap_or_else(|| "no answer".into());
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("targets: {targets}\nlog:\n{log}")
    }

    /// The value of an instant query's first sample, once there is one.
    pub fn query(&self, expr: &str) -> Option<f64> {
        let q: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (code, body) = http(self.port, "GET", &format!("/api/v1/query?query={q}"), None)?;
        if code != 200 {
            return None;
        }
        let v: Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
