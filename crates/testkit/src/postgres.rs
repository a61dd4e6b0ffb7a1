//! A throwaway PostgreSQL cluster.

use crate::{find_on_path, free_port, log_tail, run};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// The superuser role of the cluster (trust authentication on the socket
/// and on 127.0.0.1).
pub const SUPERUSER: &str = "postgres";

/// A PostgreSQL cluster made with `initdb` and run with `pg_ctl`, listening
/// on 127.0.0.1 on a free port and on a socket in its temporary directory.
///
/// As root, the server runs as the `postgres` OS user (PostgreSQL refuses
/// to run as root). Dropping the handle stops the server (`pg_ctl stop -m
/// immediate`) and removes its data.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    port: u16,
    /// Run server commands through `runuser -u postgres`.
    as_postgres: bool,
    running: bool,
    // Last, so that it is removed after the server is stopped.
    dir: TempDir,
}

impl Postgres {
    /// The directory of the PostgreSQL binaries: `$PG_BIN`, else the
    /// highest version in `/usr/lib/postgresql/*/bin`, else the directory of
    /// `initdb` on `PATH`.
    pub fn bin_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("PG_BIN") {
            return Some(PathBuf::from(dir));
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Some(bin);
        }
        let initdb = find_on_path("initdb")?;
        let initdb = fs::canonicalize(&initdb).unwrap_or(initdb);
        initdb.parent().map(Path::to_path_buf)
    }

    /// Starts a new cluster. Panics (with the server log) when the binaries
    /// are missing or the server does not start; run
    /// `scripts/install-test-deps.sh` to install them.
    pub fn start() -> Postgres {
        let bin = Self::bin_dir().unwrap_or_else(|| {
            panic!(
                "no PostgreSQL server binaries (looked at $PG_BIN and \
                 /usr/lib/postgresql/*/bin): run scripts/install-test-deps.sh"
            )
        });
        let as_postgres = rustix::process::geteuid().is_root();
        let dir = tempfile::Builder::new()
            .prefix("testkit-pg-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let socket = dir.path().join("sock");
        fs::create_dir(&socket).expect("cannot create the socket directory");
        if as_postgres {
            let id = |flag: &str| -> u32 {
                let out = run(Command::new("id").arg(flag).arg(SUPERUSER));
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .expect("`id` printed no number")
            };
            let (uid, gid) = (id("-u"), id("-g"));
            for path in [dir.path(), socket.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("cannot chown {path:?} to postgres: {e}"));
            }
        }
        let mut pg = Postgres {
            bin,
            data: dir.path().join("data"),
            socket,
            log: dir.path().join("postgres.log"),
            port: 0,
            as_postgres,
            running: false,
            dir,
        };
        let initdb = pg.bin.join("initdb");
        run(pg
            .server_command(&initdb)
            .arg("-D")
            .arg(&pg.data)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync"));
        // A port picked as free may be taken before the server binds it.
        let mut last_error = String::new();
        for _ in 0..3 {
            pg.port = free_port();
            let mut conf = fs::OpenOptions::new()
                .append(true)
                .open(pg.data.join("postgresql.conf"))
                .expect("cannot open postgresql.conf");
            writeln!(
                conf,
                "\n# testkit\nport = {}\nlisten_addresses = '127.0.0.1'\n\
                 unix_socket_directories = '{}'\nfsync = off\n",
                pg.port,
                pg.socket.display()
            )
            .expect("cannot write postgresql.conf");
            let pg_ctl = pg.bin.join("pg_ctl");
            let out = pg
                .server_command(&pg_ctl)
                .arg("-D")
                .arg(&pg.data)
                .arg("-l")
                .arg(&pg.log)
                .args(["-w", "-t", "60", "start"])
                .output()
                .expect("cannot run pg_ctl");
            if out.status.success() {
                pg.running = true;
                return pg;
            }
            last_error = format!(
                "{}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                log_tail(&pg.log, 3000)
            );
        }
        panic!("PostgreSQL did not start:\n{last_error}");
    }

    /// A command that runs `program` as the user that owns the cluster.
    fn server_command(&self, program: &Path) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", SUPERUSER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // The caller's directory may not be readable by `postgres`.
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory that holds the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The superuser role name.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// A libpq key=value connection string for `dbname` over TCP on
    /// 127.0.0.1 as the superuser.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} dbname={dbname}",
            self.port
        )
    }

    /// The path of a PostgreSQL program (`pg_dump`, `psql`, ...) of the
    /// same version as the server.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// A `psql`, `pg_dump`, ... command with host, port and user set (through
    /// `PGHOST`, `PGPORT` and `PGUSER`) to reach this server.
    pub fn client_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin(program));
        cmd.env("PGHOST", &self.socket)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER)
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS");
        cmd
    }

    /// Runs `sql` in database `db` with `psql` (unaligned, tuples only, stop
    /// on the first error) and returns its output without the final newline.
    /// Panics when psql fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = run(self.client_command("psql").args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
            "-c",
            sql,
        ]));
        String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_string()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        log_tail(&self.log, usize::MAX)
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = self
            .server_command(&pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
