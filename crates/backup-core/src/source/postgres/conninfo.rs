//! libpq-style connection strings: `key=value` pairs or `postgresql://`
//! URIs, completed from the `PG*` environment variables and `.pgpass` the
//! way libpq does, with TLS chosen by `sslmode`.

use crate::error::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};

/// A resolved connection: every parameter a client or `pg_dump` needs.
#[derive(Clone)]
pub struct ConnInfo {
    host: String,
    port: u16,
    user: String,
    dbname: String,
    password: Option<String>,
    sslmode: SslMode,
    connect_timeout: Duration,
}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn os_user() -> String {
    env("USER")
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(|| "postgres".into())
}

/// Quotes a value for a libpq key=value string.
fn quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

impl ConnInfo {
    /// Parses a connection string and completes it from the environment
    /// and `.pgpass`.
    pub fn parse(s: &str) -> Result<ConnInfo> {
        let cfg = tokio_postgres::Config::from_str(s).map_err(|e| {
            Error::usage(format!(
                "bad connection string {:?}: {e} (use key=value pairs like \"host=/var/run/postgresql dbname=dms user=backup\" or a postgresql:// URI)",
                redact_input(s)
            ))
        })?;
        let host = match cfg.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => env("PGHOST").unwrap_or_else(default_socket_dir),
        };
        let port = match cfg.get_ports().first() {
            Some(p) => *p,
            None => match env("PGPORT") {
                Some(p) => p
                    .parse()
                    .map_err(|_| Error::usage(format!("PGPORT={p:?} is not a port number")))?,
                None => 5432,
            },
        };
        let user = cfg
            .get_user()
            .map(str::to_string)
            .or_else(|| env("PGUSER"))
            .unwrap_or_else(os_user);
        let dbname = cfg
            .get_dbname()
            .map(str::to_string)
            .or_else(|| env("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        let sslmode = if s.contains("sslmode") {
            cfg.get_ssl_mode()
        } else {
            match env("PGSSLMODE").as_deref() {
                Some("disable") => SslMode::Disable,
                Some("require") | Some("verify-ca") | Some("verify-full") => SslMode::Require,
                _ => cfg.get_ssl_mode(),
            }
        };
        let mut info = ConnInfo {
            host,
            port,
            user,
            dbname,
            password: cfg
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            sslmode,
            connect_timeout: cfg
                .get_connect_timeout()
                .copied()
                .unwrap_or(Duration::from_secs(10)),
        };
        if info.password.is_none() {
            info.password = env("PGPASSWORD").or_else(|| info.pgpass());
        }
        Ok(info)
    }

    fn pgpass(&self) -> Option<String> {
        let path = env("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
        let text = std::fs::read_to_string(path).ok()?;
        let host = if self.host.starts_with('/') {
            "localhost"
        } else {
            self.host.as_str()
        };
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let fields = split_pgpass(line);
            if fields.len() != 5 {
                continue;
            }
            let port = self.port.to_string();
            let want = [
                host,
                port.as_str(),
                self.dbname.as_str(),
                self.user.as_str(),
            ];
            if fields[..4]
                .iter()
                .zip(want)
                .all(|(f, w)| f == "*" || f == w)
            {
                return Some(fields[4].clone());
            }
        }
        None
    }

    /// The same connection with another connect timeout (a check wants a
    /// short one).
    pub fn with_connect_timeout(&self, timeout: Duration) -> ConnInfo {
        ConnInfo {
            connect_timeout: timeout,
            ..self.clone()
        }
    }

    /// Whether the server runs on this machine: a Unix socket or a
    /// loopback address.
    pub fn is_local(&self) -> bool {
        self.host.starts_with('/')
            || matches!(self.host.as_str(), "localhost" | "::1")
            || self.host.starts_with("127.")
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The same server, another database.
    pub fn with_dbname(&self, dbname: &str) -> ConnInfo {
        ConnInfo {
            dbname: dbname.to_string(),
            ..self.clone()
        }
    }

    /// The connection string without the password (for manifests and messages).
    pub fn redacted(&self) -> String {
        format!(
            "host={} port={} user={} dbname={}",
            quote(&self.host),
            self.port,
            quote(&self.user),
            quote(&self.dbname)
        )
    }

    /// A key=value string for libpq tools (`pg_dump`, `pg_restore`); the
    /// password travels separately, in `PGPASSWORD`.
    pub fn libpq_string(&self) -> String {
        let ssl = match self.sslmode {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            _ => "prefer",
        };
        format!(
            "{} sslmode={ssl} connect_timeout={}",
            self.redacted(),
            self.connect_timeout.as_secs().max(1)
        )
    }

    /// A key=value string including the password (for passing a resolved
    /// connection on inside this process).
    pub fn libpq_string_with_password(&self) -> String {
        match &self.password {
            Some(p) => format!("{} password={}", self.libpq_string(), quote(p)),
            None => self.libpq_string(),
        }
    }

    /// Environment for libpq tools.
    pub fn tool_env(&self) -> Vec<(String, String)> {
        let mut v = vec![("PGAPPNAME".to_string(), "backup".to_string())];
        if let Some(p) = &self.password {
            v.push(("PGPASSWORD".into(), p.clone()));
        }
        v
    }

    fn config(&self) -> postgres::Config {
        let mut c = postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .ssl_mode(self.sslmode)
            .connect_timeout(self.connect_timeout)
            .application_name("backup");
        if let Some(p) = &self.password {
            c.password(p);
        }
        c
    }

    /// Opens a connection.
    pub fn connect(&self) -> Result<postgres::Client> {
        let cfg = self.config();
        let result = if self.sslmode == SslMode::Disable || self.host.starts_with('/') {
            cfg.connect(postgres::NoTls)
        } else {
            let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
                .map_err(|e| {
                Error::new(ErrorKind::Source, format!("cannot set up TLS: {e}"))
            })?;
            // Like libpq's `require`/`prefer`: encrypt, and verify the server
            // only when a root certificate is configured.
            match env("PGSSLROOTCERT") {
                Some(ca) => builder
                    .set_ca_file(&ca)
                    .map_err(|e| Error::usage(format!("cannot read PGSSLROOTCERT={ca}: {e}")))?,
                None => builder.set_verify(openssl::ssl::SslVerifyMode::NONE),
            }
            let mut tls = postgres_openssl::MakeTlsConnector::new(builder.build());
            if env("PGSSLROOTCERT").is_none() {
                tls.set_callback(|c, _| {
                    c.set_verify_hostname(false);
                    Ok(())
                });
            }
            cfg.connect(tls)
        };
        result.map_err(|e| connect_error(self, e))
    }
}

fn default_socket_dir() -> String {
    for d in ["/var/run/postgresql", "/run/postgresql", "/tmp"] {
        if Path::new(d).is_dir() {
            return d.to_string();
        }
    }
    "localhost".into()
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().expect("one field").push(n);
                }
            }
            ':' => out.push(String::new()),
            c => out.last_mut().expect("one field").push(c),
        }
    }
    out
}

fn redact_input(s: &str) -> String {
    let re_kv = s
        .split_whitespace()
        .map(|p| {
            if p.starts_with("password=") {
                "password=***"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    match (re_kv.find("://"), re_kv.find('@')) {
        (Some(a), Some(b)) if b > a => {
            let creds = &re_kv[a + 3..b];
            match creds.split_once(':') {
                Some((u, _)) => format!("{}{u}:***{}", &re_kv[..a + 3], &re_kv[b..]),
                None => re_kv,
            }
        }
        _ => re_kv,
    }
}

/// Turns a driver error into a message that says what to do.
pub fn connect_error(info: &ConnInfo, e: postgres::Error) -> Error {
    let text = error_text(&e);
    use tokio_postgres::error::SqlState;
    let hint = match e.code() {
        Some(c) if *c == SqlState::INVALID_PASSWORD => {
            "check the password (PGPASSWORD, ~/.pgpass or password= in the connection string)"
        }
        Some(c)
            if *c == SqlState::INVALID_CATALOG_NAME
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            "check the database and user names (and pg_hba.conf)"
        }
        Some(_) => "check the connection string and the server's pg_hba.conf",
        None if text.contains("password") => {
            "give the password with PGPASSWORD, ~/.pgpass or password= in the connection string"
        }
        None => "is the server running and reachable at that host and port?",
    };
    Error::new(
        ErrorKind::Source,
        format!(
            "cannot connect to PostgreSQL ({}): {text}; {hint}",
            info.redacted()
        ),
    )
}

/// The server's message (with its detail) or the whole chain of a client
/// error.
pub fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        };
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s
}

/// Describes a driver error during work on a connection.
pub fn db_error(context: impl std::fmt::Display, e: postgres::Error) -> Error {
    Error::new(ErrorKind::Source, format!("{context}: {}", error_text(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_value_and_uri() {
        let a =
            ConnInfo::parse("host=/tmp/sock port=5433 dbname=dms user=backup password=x").unwrap();
        assert_eq!(a.dbname(), "dms");
        assert_eq!(
            a.redacted(),
            "host=/tmp/sock port=5433 user=backup dbname=dms"
        );
        assert!(!a.libpq_string().contains("password"));
        let b = ConnInfo::parse("postgresql://backup:secret@127.0.0.1:6543/sales").unwrap();
        assert_eq!(b.dbname(), "sales");
        assert_eq!(b.port, 6543);
        assert_eq!(b.password.as_deref(), Some("secret"));
        assert_eq!(b.with_dbname("postgres").dbname(), "postgres");
        let e = ConnInfo::parse("postgresql://u:pw@h/db?bogus=1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw@"), "{e}");
    }

    #[test]
    fn a_socket_or_a_loopback_address_is_this_machine() {
        let local = |s: &str| ConnInfo::parse(s).unwrap().is_local();
        assert!(local("host=/var/run/postgresql dbname=dms"));
        assert!(local("host=127.0.0.1 dbname=dms"));
        assert!(local("host=localhost dbname=dms"));
        assert!(local("postgresql://u@[::1]:5432/dms"));
        assert!(!local("host=db.example.com dbname=dms"));
        assert!(!local("host=10.0.0.7 dbname=dms"));
    }

    #[test]
    fn pgpass_lines_split_with_escapes() {
        assert_eq!(
            split_pgpass(r"h:5432:db:u:p\:w"),
            vec!["h", "5432", "db", "u", "p:w"]
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("has space"), "'has space'");
        assert_eq!(quote("it's"), "'it\\'s'");
    }
}
