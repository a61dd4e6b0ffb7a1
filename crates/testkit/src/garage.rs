//! A throwaway single-node Garage S3 server.

use crate::{find_on_path, free_port, is_executable, log_tail, run, wait_timeout};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The S3 region Garage is configured with.
const REGION: &str = "garage";
/// The name of the access key the harness creates.
const KEY_NAME: &str = "testkit-key";

/// A single-node Garage server on loopback ports, with one bucket and one
/// access key that may read, write and own it.
///
/// ```no_run
/// let garage = testkit::Garage::start();
/// println!("{} {}", garage.endpoint(), garage.bucket());
/// ```
///
/// Dropping the handle kills the server and removes its data.
#[derive(Debug)]
pub struct Garage {
    child: Option<Child>,
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    s3_port: u16,
    rpc_port: u16,
    admin_port: u16,
    bucket: String,
    access_key: String,
    secret_key: String,
    // Last, so that it is removed after the server is gone.
    dir: TempDir,
}

impl Garage {
    /// The `garage` binary: `$GARAGE_BIN`, else `garage` on `PATH`, else
    /// `~/.cargo/bin/garage`.
    pub fn binary() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("GARAGE_BIN") {
            return Some(PathBuf::from(p));
        }
        if let Some(p) = find_on_path("garage") {
            return Some(p);
        }
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let p = cargo_home.join("bin").join("garage");
        is_executable(&p).then_some(p)
    }

    /// Starts a server with a bucket named `test-bucket`.
    ///
    /// Panics (with the server log) when Garage is missing or does not come
    /// up; run `scripts/install-test-deps.sh` to install it.
    pub fn start() -> Garage {
        Self::start_with_bucket("test-bucket")
    }

    /// Starts a server with a bucket named `bucket` (3 to 63 characters of
    /// lowercase letters, digits and `-`).
    pub fn start_with_bucket(bucket: &str) -> Garage {
        let bin = Self::binary().unwrap_or_else(|| {
            panic!(
                "the `garage` binary is not installed (looked at $GARAGE_BIN, PATH and \
                 ~/.cargo/bin): run scripts/install-test-deps.sh"
            )
        });
        // A port picked as free may be taken by someone else before Garage
        // binds it: try again with fresh ports.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin, bucket) {
                Ok(garage) => return garage,
                Err(e) => last_error = e,
            }
        }
        panic!("Garage did not start: {last_error}");
    }

    fn try_start(bin: &Path, bucket: &str) -> Result<Garage, String> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-garage-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let log = dir.path().join("garage.log");
        let secret = random_hex(32);
        let text = format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
"#,
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
        );
        fs::write(&config, text).map_err(|e| format!("cannot write {config:?}: {e}"))?;
        let log_file = fs::File::create(&log).map_err(|e| format!("cannot create {log:?}: {e}"))?;
        let mut cmd = Command::new(bin);
        clear_garage_env(&mut cmd);
        let child = cmd
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run {bin:?}: {e}"))?;
        let mut garage = Garage {
            child: Some(child),
            bin: bin.to_path_buf(),
            config,
            log,
            s3_port,
            rpc_port,
            admin_port,
            bucket: bucket.to_string(),
            access_key: String::new(),
            secret_key: String::new(),
            dir,
        };
        // On error the handle is dropped, which kills the server.
        garage.wait_ready()?;
        garage.setup()?;
        Ok(garage)
    }

    /// Waits until `garage status` answers and the S3 port accepts
    /// connections.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "the server exited ({status}):\n{}",
                        log_tail(&self.log, 4000)
                    ));
                }
            }
            let status_ok = self
                .command()
                .arg("status")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            let s3_up = std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_ok();
            if status_ok && s3_up {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the server did not answer within 60 s:\n{}",
                    log_tail(&self.log, 4000)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Assigns the layout, creates the bucket and the key.
    fn setup(&mut self) -> Result<(), String> {
        let node = self.try_cli(&["node", "id", "-q"])?;
        let node = node.trim().split('@').next().unwrap_or("").to_string();
        if node.is_empty() {
            return Err("`garage node id` printed no node id".into());
        }
        self.try_cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node])?;
        self.try_cli(&["layout", "apply", "--version", "1"])?;
        let created = self.try_cli(&["key", "create", KEY_NAME])?;
        let (mut id, mut secret) = parse_key(&created);
        if secret.is_none() {
            let info = self.try_cli(&["key", "info", "--show-secret", KEY_NAME])?;
            (id, secret) = parse_key(&info);
        }
        match (id, secret) {
            (Some(id), Some(secret)) => {
                self.access_key = id;
                self.secret_key = secret;
            }
            _ => return Err(format!("cannot parse the key from:\n{created}")),
        }
        let bucket = self.bucket.clone();
        self.try_create_bucket(&bucket)
    }

    fn try_create_bucket(&self, name: &str) -> Result<(), String> {
        self.try_cli(&["bucket", "create", name])?;
        self.try_cli(&[
            "bucket", "allow", "--read", "--write", "--owner", name, "--key", KEY_NAME,
        ])?;
        Ok(())
    }

    /// Creates another bucket that the harness's key may read, write and own.
    pub fn create_bucket(&self, name: &str) {
        self.try_create_bucket(name)
            .unwrap_or_else(|e| panic!("cannot create bucket {name}: {e}"));
    }

    /// A `garage` command with this server's config.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        clear_garage_env(&mut cmd);
        cmd.arg("-c").arg(&self.config).stdin(Stdio::null());
        cmd
    }

    fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(|e| format!("cannot run garage: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`garage {}` failed ({}):\n{}{}\nserver log:\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                log_tail(&self.log, 2000)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs the `garage` CLI against this server and returns its output;
    /// panics when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = run(self.command().args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The S3 endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The S3 API port.
    pub fn s3_port(&self) -> u16 {
        self.s3_port
    }

    /// The RPC port.
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// The admin API port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// The S3 region (`garage`).
    pub fn region(&self) -> &str {
        REGION
    }

    /// The access key id.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret access key.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The server's config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        log_tail(&self.log, usize::MAX)
    }

    /// The environment a child process needs to reach this server with the
    /// standard AWS chain: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL`, `BACKUP_S3_PATH_STYLE=true`, and
    /// `AWS_EC2_METADATA_DISABLED=true` (so that nothing ever asks the EC2
    /// metadata service).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("BACKUP_S3_PATH_STYLE", "true".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 10 s) and
    /// waits for it. The data directory stays until the handle is dropped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::Term);
            if !wait_timeout(&mut child, Duration::from_secs(10)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Kills the server (SIGKILL) and waits for it: the endpoint becomes
    /// unreachable at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Removes `GARAGE_*` variables that would override the config file.
fn clear_garage_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GARAGE_") {
            cmd.env_remove(key);
        }
    }
}

/// Parses `Key ID:` and `Secret key:` from `garage key create/info` output.
fn parse_key(text: &str) -> (Option<String>, Option<String>) {
    let field = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && !v.contains("redacted") && !v.starts_with('('))
    };
    (field("Key ID:"), field("Secret key:"))
}

/// `n` random bytes from the kernel, as hex.
fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("cannot read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::parse_key;

    #[test]
    fn parses_key_output() {
        let text = "==== ACCESS KEY INFORMATION ====\nKey ID:              GK58fe\n\
                    Key name:            k1\nSecret key:          37aa89\nCreated: now\n";
        assert_eq!(
            parse_key(text),
            (Some("GK58fe".to_string()), Some("37aa89".to_string()))
        );
        let redacted = "Key ID: GK1\nSecret key: (redacted)\n";
        assert_eq!(parse_key(redacted), (Some("GK1".to_string()), None));
    }
}
