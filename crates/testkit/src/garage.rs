//! A throwaway single-node Garage S3 server, and the pieces of one Garage
//! server process that [`GarageCluster`](crate::GarageCluster) shares.

use crate::{find_on_path, free_port, is_executable, log_tail, run, wait_timeout};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The S3 region Garage is configured with.
pub(crate) const REGION: &str = "garage";
/// The name of the access key the harness creates.
pub(crate) const KEY_NAME: &str = "testkit-key";

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
    server: Server,
    bucket: String,
    access_key: String,
    secret_key: String,
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

    /// [`Garage::binary`], or a panic that says how to install it.
    pub(crate) fn required_binary() -> PathBuf {
        Self::binary().unwrap_or_else(|| {
            panic!(
                "the `garage` binary is not installed (looked at $GARAGE_BIN, PATH and \
                 ~/.cargo/bin): run scripts/install-test-deps.sh"
            )
        })
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
        let bin = Self::required_binary();
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
        let mut server = Server::create(bin, "testkit-garage-", &random_hex(32), 1)?;
        // On error the server is dropped, which kills it.
        server.spawn()?;
        server.wait_up()?;
        let node = server.node_id()?;
        let node = node.split('@').next().unwrap_or("");
        server.try_cli(&["layout", "assign", "-z", "dc1", "-c", "1G", node])?;
        server.try_cli(&["layout", "apply", "--version", "1"])?;
        let (access_key, secret_key) = server.create_key()?;
        server.create_bucket(bucket)?;
        Ok(Garage {
            server,
            bucket: bucket.to_string(),
            access_key,
            secret_key,
        })
    }

    /// Creates another bucket that the harness's key may read, write and own.
    pub fn create_bucket(&self, name: &str) {
        self.server
            .create_bucket(name)
            .unwrap_or_else(|e| panic!("cannot create bucket {name}: {e}"));
    }

    /// Runs the `garage` CLI against this server and returns its output;
    /// panics when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        self.server.cli(args)
    }

    /// The S3 endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// The S3 API port.
    pub fn s3_port(&self) -> u16 {
        self.server.s3_port
    }

    /// The RPC port.
    pub fn rpc_port(&self) -> u16 {
        self.server.rpc_port
    }

    /// The admin API port.
    pub fn admin_port(&self) -> u16 {
        self.server.admin_port
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
        &self.server.config
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        self.server.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// The environment a child process needs to reach this server with the
    /// standard AWS chain: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL`, `BACKUP_S3_PATH_STYLE=true`, and
    /// `AWS_EC2_METADATA_DISABLED=true` (so that nothing ever asks the EC2
    /// metadata service).
    pub fn env(&self) -> Vec<(String, String)> {
        s3_env(&self.endpoint(), &self.access_key, &self.secret_key)
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 10 s) and
    /// waits for it. The data directory stays until the handle is dropped.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Kills the server (SIGKILL) and waits for it: the endpoint becomes
    /// unreachable at once.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts a stopped or killed server again on the same ports and data,
    /// and waits until its S3 API answers. Panics (with the log) when it
    /// does not come up.
    pub fn restart(&mut self) {
        let up = self
            .server
            .spawn()
            .and_then(|_| self.server.wait_up())
            .and_then(|_| {
                self.server.wait_until(
                    "the S3 API does not answer",
                    std::time::Duration::from_secs(60),
                    |s| s.s3_up(),
                )
            });
        if let Err(e) = up {
            panic!("Garage did not come back: {e}\n{}", self.server.log());
        }
    }
}

/// One Garage server process: its temporary directory (config, log,
/// metadata and data), its loopback ports and, while it runs, the child.
/// Dropping it kills the process, then removes the directory.
#[derive(Debug)]
pub(crate) struct Server {
    child: Option<Child>,
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    pub(crate) s3_port: u16,
    pub(crate) rpc_port: u16,
    pub(crate) admin_port: u16,
    // Last, so that it is removed after the server is gone.
    dir: TempDir,
}

impl Server {
    /// Makes a temporary directory named `prefix...`, picks free ports and
    /// writes the config (not started yet).
    pub(crate) fn create(
        bin: &Path,
        prefix: &str,
        rpc_secret: &str,
        replication_factor: usize,
    ) -> Result<Server, String> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let text = format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = {replication_factor}

rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

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
        Ok(Server {
            child: None,
            bin: bin.to_path_buf(),
            config,
            log: dir.path().join("garage.log"),
            s3_port,
            rpc_port,
            admin_port,
            dir,
        })
    }

    /// Starts the process (if it is not running), appending to its log.
    pub(crate) fn spawn(&mut self) -> Result<(), String> {
        if self.is_running() {
            return Ok(());
        }
        let log = &self.log;
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open {log:?}: {e}"))?;
        let mut cmd = Command::new(&self.bin);
        clear_garage_env(&mut cmd);
        let child = cmd
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run {:?}: {e}", self.bin))?;
        self.child = Some(child);
        Ok(())
    }

    /// An error with the log when the process has exited.
    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => Err(format!(
                "the server exited ({status}):\n{}",
                log_tail(&self.log, 4000)
            )),
            Some(Err(e)) => Err(format!("cannot wait for the server: {e}")),
            None => Err("the server is not running".into()),
        }
    }

    /// Waits up to `timeout` (while the process runs) until `ready` holds.
    pub(crate) fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut(&Server) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if ready(self) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{what}: not within {} s:\n{}",
                    timeout.as_secs(),
                    log_tail(&self.log, 4000)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `garage status` answers and the S3 port accepts
    /// connections.
    pub(crate) fn wait_up(&mut self) -> Result<(), String> {
        self.wait_until(
            "the server did not answer",
            Duration::from_secs(60),
            |server| {
                let status_ok = server
                    .command()
                    .arg("status")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                status_ok && server.s3_up()
            },
        )
    }

    /// Whether this server's own process listens on its S3 port. A port
    /// picked as free may be bound first by another test's server, whose
    /// answers would pass for this one's until that test stops it.
    pub(crate) fn s3_up(&self) -> bool {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return false;
        };
        listening_sockets(self.s3_port)
            .into_iter()
            .any(|inode| holds_socket(pid, inode))
    }

    /// The full node id with its address, `<hex>@127.0.0.1:<rpc port>`.
    pub(crate) fn node_id(&self) -> Result<String, String> {
        let id = self.try_cli(&["node", "id", "-q"])?.trim().to_string();
        if id.split('@').next().unwrap_or("").is_empty() {
            return Err("`garage node id` printed no node id".into());
        }
        Ok(id)
    }

    /// Creates the harness's access key; returns its id and secret.
    pub(crate) fn create_key(&self) -> Result<(String, String), String> {
        let created = self.try_cli(&["key", "create", KEY_NAME])?;
        let (mut id, mut secret) = parse_key(&created);
        if secret.is_none() {
            let info = self.try_cli(&["key", "info", "--show-secret", KEY_NAME])?;
            (id, secret) = parse_key(&info);
        }
        match (id, secret) {
            (Some(id), Some(secret)) => Ok((id, secret)),
            _ => Err(format!("cannot parse the key from:\n{created}")),
        }
    }

    /// Creates a bucket that the harness's key may read, write and own.
    pub(crate) fn create_bucket(&self, name: &str) -> Result<(), String> {
        self.try_cli(&["bucket", "create", name])?;
        self.try_cli(&[
            "bucket", "allow", "--read", "--write", "--owner", name, "--key", KEY_NAME,
        ])?;
        Ok(())
    }

    /// A `garage` command with this server's config.
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        clear_garage_env(&mut cmd);
        cmd.arg("-c").arg(&self.config).stdin(Stdio::null());
        cmd
    }

    pub(crate) fn try_cli(&self, args: &[&str]) -> Result<String, String> {
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

    /// Runs the `garage` CLI against this server; panics when it fails.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let out = run(self.command().args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The S3 endpoint URL, `http://127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The server's temporary directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's config file.
    pub(crate) fn config_path(&self) -> &Path {
        &self.config
    }

    /// The log so far (every run of the process appends to it).
    pub(crate) fn log(&self) -> String {
        log_tail(&self.log, usize::MAX)
    }

    /// The last `max` bytes of the log.
    pub(crate) fn log_tail(&self, max: usize) -> String {
        log_tail(&self.log, max)
    }

    /// Whether the process is running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGTERM, then SIGKILL after 10 s; waits for the process.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::Term);
            if !wait_timeout(&mut child, Duration::from_secs(10)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// SIGKILL; waits for the process.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The variables that point the standard AWS chain (and `backup`) at a
/// Garage S3 endpoint with the given key (see [`Garage::env`]).
pub(crate) fn s3_env(endpoint: &str, access_key: &str, secret_key: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", access_key),
        ("AWS_SECRET_ACCESS_KEY", secret_key),
        ("AWS_REGION", REGION),
        ("AWS_ENDPOINT_URL", endpoint),
        ("BACKUP_S3_PATH_STYLE", "true"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
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
pub(crate) fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("cannot read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The inodes of the IPv4 sockets listening on `port` (`/proc/net/tcp`).
fn listening_sockets(port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        // sl local_address rem_address st queues timer retransmits uid timeout inode
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9))
        else {
            continue;
        };
        let local_port = local
            .split_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        if local_port == Some(port) && *state == LISTEN {
            if let Ok(inode) = inode.parse() {
                out.push(inode);
            }
        }
    }
    out
}

/// Whether process `pid` has the socket `inode` open.
fn holds_socket(pid: u32, inode: u64) -> bool {
    let want = format!("socket:[{inode}]");
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == want.as_str()))
}

#[cfg(test)]
mod tests {
    use super::{holds_socket, listening_sockets, parse_key};

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

    #[test]
    fn a_listening_socket_is_found_with_the_process_that_holds_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inodes = listening_sockets(port);
        assert_eq!(inodes.len(), 1, "{inodes:?}");
        assert!(holds_socket(std::process::id(), inodes[0]));
        // Another process does not hold it.
        assert!(!holds_socket(1, inodes[0]));
        drop(listener);
        assert!(listening_sockets(port).is_empty());
    }
}
