//! Talking to a running `backupd`: its address (`--daemon`, else
//! `daemon.listen` of the system description, else the default), its
//! bearer token (`BACKUPD_TOKEN`, else `daemon.token_file`), and requests
//! whose failures say what to check.

use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use backup_core::system::DEFAULT_LISTEN;
use backup_core::{Error, ErrorKind};
use serde_json::Value;
use std::time::Duration;

/// How long a request to the daemon may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The daemon's base URL.
pub fn base_url(s: &Settings, flag: Option<&str>) -> String {
    let addr = match (flag, s.system().and_then(|sys| sys.daemon.as_ref())) {
        (Some(d), _) => d.to_string(),
        (None, Some(d)) => d.listen.to_string(),
        (None, None) => DEFAULT_LISTEN.to_string(),
    };
    format!("http://{addr}")
}

/// The bearer token for state-changing requests (read as the daemon reads it).
pub fn token(s: &Settings) -> Result<String> {
    let daemon = s
        .system()
        .and_then(|sys| sys.daemon.clone())
        .unwrap_or_default();
    match daemon.token()? {
        Some(t) => Ok(t),
        None => bail!(Error::usage(
            "the daemon needs its token: set BACKUPD_TOKEN, or daemon.token_file in the --config file"
        )),
    }
}

/// GETs `path` and reads the JSON answer.
pub fn get(base: &str, path: &str) -> Result<Value> {
    let url = format!("{base}{path}");
    answer(&url, ureq::get(&url).timeout(TIMEOUT).call())
}

/// POSTs `body` to `path` with the token and reads the JSON answer.
pub fn post(base: &str, path: &str, token: &str, body: &Value) -> Result<Value> {
    let url = format!("{base}{path}");
    let request = ureq::post(&url)
        .timeout(TIMEOUT)
        .set("Authorization", &format!("Bearer {token}"));
    answer(&url, request.send_json(body))
}

fn answer(url: &str, r: Result<ureq::Response, ureq::Error>) -> Result<Value> {
    match r {
        Ok(r) => r.into_json().context("the daemon's answer is not JSON"),
        Err(ureq::Error::Status(code, r)) => {
            let why = r
                .into_json::<Value>()
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_default();
            // The daemon refused what was asked (4xx), or failed itself (5xx).
            let kind = if code < 500 {
                ErrorKind::Usage
            } else {
                ErrorKind::Storage
            };
            bail!(Error::new(kind, format!("the daemon refused ({code}): {why}")))
        }
        Err(e) => bail!(Error::new(
            ErrorKind::Storage,
            format!("cannot reach the daemon at {url} ({e}): is backupd running, and is daemon.listen right?")
        )),
    }
}
