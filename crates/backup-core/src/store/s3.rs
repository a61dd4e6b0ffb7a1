//! S3 and S3-compatible object storage (AWS S3, Garage, MinIO, ...).
//!
//! The [`ObjectStore`] trait is synchronous; [`S3Store`] owns a small tokio
//! runtime and blocks on the async SDK calls. When it is called from a
//! thread that already runs inside another tokio runtime (for example a
//! `spawn_blocking` thread of the daemon), the call is moved to a short-lived
//! plain thread, because tokio refuses to block inside a runtime.
//!
//! Robustness:
//! - every upload carries a CRC32 checksum (`x-amz-checksum-crc32`) that the
//!   server checks before it stores the object; objects larger than
//!   [`MULTIPART_THRESHOLD`] go up as a multipart upload of
//!   [`PART_SIZE`] parts, each with its own checksum;
//! - transient failures (connection errors, timeouts, 5xx, throttling) are
//!   retried by the SDK with exponential backoff and jitter, 5 attempts;
//! - a short connect timeout makes an unreachable endpoint fail in about
//!   30 seconds instead of hanging; the SDK's stalled-stream protection
//!   aborts transfers that stop moving;
//! - SDK errors become [`Error`]s of the right [`ErrorKind`] with a message
//!   that says what to do.

use super::{Kind, ObjectInfo, ObjectStore};
use crate::error::{Error, ErrorKind, Result};
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 64 * 1024 * 1024;
/// The part size of multipart uploads.
pub const PART_SIZE: usize = 16 * 1024 * 1024;
/// How many parts of one object are uploaded at the same time.
const PART_CONCURRENCY: usize = 4;
/// Attempts per request (first try plus retries).
const MAX_ATTEMPTS: u32 = 5;
/// Time allowed to open a connection (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed from sending a small request to its response headers.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Slowest upload rate assumed when a request carries a body: a body of
/// `n` bytes gets `READ_TIMEOUT + n / UPLOAD_RATE` seconds.
const UPLOAD_RATE: u64 = 256 * 1024;
/// Attempts to download a body again when the connection breaks after the
/// response headers (the SDK does not retry those).
const BODY_ATTEMPTS: u32 = 3;

/// S3 settings that are not part of the repository URL.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Endpoint URL for S3-compatible stores (e.g. `http://127.0.0.1:3900`).
    pub endpoint: Option<String>,
    /// Region; defaults to the AWS chain's region, else `us-east-1`.
    pub region: Option<String>,
    /// Use path-style addressing (needed by most S3-compatible stores).
    pub path_style: bool,
    /// Access key id; defaults to the standard AWS credential chain.
    pub access_key_id: Option<String>,
    /// Secret access key; defaults to the standard AWS credential chain.
    pub secret_access_key: Option<String>,
}

/// A repository under a prefix of an S3 bucket.
pub struct S3Store {
    bucket: String,
    prefix: String,
    /// The endpoint, for messages.
    endpoint: String,
    client: Client,
    /// `Some` until drop; taken there to shut down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
    /// Set once the bucket is known to exist.
    bucket_checked: AtomicBool,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `fut` to completion on `rt`, from any thread.
fn block_on<F>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(fut))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    } else {
        rt.block_on(fut)
    }
}

/// Timeouts for a request that sends `body_len` bytes.
fn timeouts(body_len: usize) -> TimeoutConfig {
    let extra = Duration::from_secs(body_len as u64 / UPLOAD_RATE);
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT + extra)
        .build()
}

impl S3Store {
    /// Connects to `bucket` under `prefix`.
    ///
    /// Settings that are `None` come from the standard AWS chain
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, profiles, ...). No request is sent yet.
    pub fn new(bucket: String, prefix: String, settings: S3Settings) -> Result<Self> {
        let prefix = prefix.trim_matches('/').to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-store")
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the S3 client runtime", e))?;
        let credentials =
            match (&settings.access_key_id, &settings.secret_access_key) {
                (Some(id), Some(secret)) => Some(Credentials::new(
                    id.clone(),
                    secret.clone(),
                    None,
                    None,
                    "backup-settings",
                )),
                (None, None) => None,
                _ => return Err(Error::usage(
                    "S3 credentials are incomplete: give both the access key id and the secret \
                     access key, or neither to use the AWS credential chain",
                )),
            };
        let sdk_config = block_on(&runtime, async {
            let env_endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok()
                .filter(|s| !s.is_empty());
            let custom_endpoint = settings.endpoint.is_some() || env_endpoint.is_some();
            let region = match &settings.region {
                Some(r) => RegionProviderChain::first_try(Region::new(r.clone())),
                // An S3-compatible store is not on EC2's metadata service:
                // do not ask it for a region.
                None if custom_endpoint => RegionProviderChain::first_try(
                    aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
                )
                .or_else(aws_config::profile::ProfileFileRegionProvider::new()),
                None => RegionProviderChain::default_provider(),
            }
            .or_else(Region::from_static("us-east-1"));
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .region(region)
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(MAX_ATTEMPTS)
                        .with_initial_backoff(Duration::from_millis(500))
                        .with_max_backoff(Duration::from_secs(8)),
                )
                .timeout_config(timeouts(0));
            if let Some(endpoint) = &settings.endpoint {
                loader = loader.endpoint_url(endpoint.clone());
            }
            if let Some(credentials) = credentials {
                loader = loader.credentials_provider(credentials);
            }
            loader.load().await
        });
        let endpoint = sdk_config
            .endpoint_url()
            .map(str::to_string)
            .unwrap_or_else(|| {
                let region = sdk_config.region().map_or("us-east-1", |r| r.as_ref());
                format!("https://s3.{region}.amazonaws.com")
            });
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(settings.path_style)
            .build();
        Ok(S3Store {
            bucket,
            prefix,
            endpoint,
            client: Client::from_conf(s3_config),
            runtime: Some(runtime),
            bucket_checked: AtomicBool::new(false),
        })
    }

    fn run<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        block_on(
            self.runtime.as_ref().expect("the runtime lives until drop"),
            fut,
        )
    }

    /// The full key of an object.
    fn key(&self, kind: Kind, name: &str) -> String {
        if self.prefix.is_empty() {
            kind.path(name)
        } else {
            format!("{}/{}", self.prefix, kind.path(name))
        }
    }

    /// The key prefix under which objects of `kind` live (ends with `/`
    /// unless it is the empty bucket root).
    fn folder(&self, kind: Kind) -> String {
        match (self.prefix.is_empty(), kind.dir()) {
            (true, "") => String::new(),
            (true, dir) => format!("{dir}/"),
            (false, "") => format!("{}/", self.prefix),
            (false, dir) => format!("{}/{dir}/", self.prefix),
        }
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Maps an SDK error of `action` on `key` (`None`: the bucket itself).
    fn map_err<E>(
        &self,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        action: &str,
        key: Option<&str>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let target = key.map_or_else(|| format!("s3://{}", self.bucket), |k| self.url(k));
        let what = format!("cannot {action} {target}");
        match &err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = err.code().unwrap_or("");
                let detail = match err.message() {
                    Some(m) if !code.is_empty() => format!("{code}: {m} (HTTP {status})"),
                    _ if !code.is_empty() => format!("{code} (HTTP {status})"),
                    _ => format!("HTTP {status}"),
                };
                self.map_service(what, code, status, detail, key.is_some())
            }
            SdkError::TimeoutError(_) => Error::storage(
                format!(
                    "{what}: cannot reach S3 endpoint {} (timed out): check the endpoint URL \
                     (AWS_ENDPOINT_URL), the network and that the server is running",
                    self.endpoint
                ),
                true,
            ),
            SdkError::DispatchFailure(failure) => {
                let cause = chain(&err);
                if failure.is_io() || failure.is_timeout() {
                    Error::storage(
                        format!(
                            "{what}: cannot reach S3 endpoint {} ({cause}): check the endpoint \
                             URL (AWS_ENDPOINT_URL), the network and that the server is running",
                            self.endpoint
                        ),
                        true,
                    )
                } else if cause.contains("credentials") || cause.contains("identity") {
                    no_credentials(what, cause)
                } else {
                    Error::storage(format!("{what}: {cause}"), !failure.is_user())
                }
            }
            SdkError::ResponseError(_) => Error::storage(
                format!(
                    "{what}: unreadable response from S3 endpoint {} ({}); try again",
                    self.endpoint,
                    chain(&err)
                ),
                true,
            ),
            _ => {
                let cause = chain(&err);
                if cause.contains("credentials") || cause.contains("identity") {
                    no_credentials(what, cause)
                } else {
                    Error::storage(format!("{what}: {cause}"), false)
                }
            }
        }
    }

    /// Maps a service error by its code and HTTP status.
    fn map_service(
        &self,
        what: String,
        code: &str,
        status: u16,
        detail: String,
        object: bool,
    ) -> Error {
        // HEAD responses have no body, hence no code: a 404 on the bucket
        // itself means that it does not exist.
        if code == "NoSuchBucket" || (!object && status == 404) {
            return self.no_such_bucket();
        }
        match (code, status) {
            ("NoSuchKey", _) | (_, 404) => Error::not_found(format!("{what}: no such object")),
            ("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied", _) | (_, 403) => {
                Error::storage(
                    format!(
                        "{what}: access denied ({detail}): check AWS_ACCESS_KEY_ID / \
                         AWS_SECRET_ACCESS_KEY (or the configured credentials) and that the key \
                         may read and write bucket {}",
                        self.bucket
                    ),
                    false,
                )
            }
            ("InvalidRange", _) | (_, 416) => Error::corrupt(format!(
                "{what}: the object is shorter than expected ({detail})"
            )),
            (_, 301 | 307 | 400) if code.contains("Region") || code == "PermanentRedirect" => {
                Error::storage(
                    format!(
                        "{what}: wrong region ({detail}): set AWS_REGION to the bucket's region"
                    ),
                    false,
                )
            }
            ("SlowDown" | "RequestTimeout" | "RequestTimeTooSkewed", _) | (_, 429 | 500..=599) => {
                Error::storage(
                    format!(
                        "{what}: the S3 endpoint {} keeps failing ({detail}); try again later",
                        self.endpoint
                    ),
                    true,
                )
            }
            _ => Error::storage(format!("{what}: {detail}"), false),
        }
    }

    fn no_such_bucket(&self) -> Error {
        Error::storage(
            format!(
                "bucket {} does not exist at {}: create it first (e.g. `aws s3 mb s3://{}` or \
                 `garage bucket create {}`) or fix the repository URL",
                self.bucket, self.endpoint, self.bucket, self.bucket
            ),
            false,
        )
    }

    /// Checks that the bucket exists and may be accessed (once per store).
    async fn check_bucket(&self) -> Result<()> {
        if self.bucket_checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| self.map_err(e, "access bucket", None))?;
        self.bucket_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn head(&self, key: &str) -> Result<bool> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = self.map_err(e, "look up", Some(key));
                if err.kind() == ErrorKind::NotFound {
                    // A HEAD response has no body, so a missing bucket also
                    // looks like a plain 404: tell them apart.
                    self.check_bucket().await?;
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn put_single(&self, key: &str, data: &[u8]) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(data.len() as i64)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(data.to_vec()))
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::new().timeout_config(timeouts(data.len())),
            )
            .send()
            .await
            .map_err(|e| self.map_err(e, "upload", Some(key)))?;
        Ok(())
    }

    async fn put_multipart(&self, key: &str, data: &[u8]) -> Result<()> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| self.map_err(e, "start a multipart upload of", Some(key)))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        match self.upload_parts(key, &upload_id, data).await {
            Ok(parts) => {
                let completed = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| self.map_err(e, "complete the multipart upload of", Some(key)));
                if completed.is_err() {
                    self.abort_multipart(key, &upload_id).await;
                }
                completed.map(|_| ())
            }
            Err(e) => {
                self.abort_multipart(key, &upload_id).await;
                Err(e)
            }
        }
    }

    /// Best effort: a failed abort leaves parts that the bucket's lifecycle
    /// rules (or a later prune) remove.
    async fn abort_multipart(&self, key: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        data: &[u8],
    ) -> Result<Vec<CompletedPart>> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut parts = Vec::new();
        let mut chunks = data.chunks(PART_SIZE).enumerate();
        loop {
            while tasks.len() < PART_CONCURRENCY {
                let Some((index, chunk)) = chunks.next() else {
                    break;
                };
                let part_number = index as i32 + 1;
                let request = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(part_number)
                    .content_length(chunk.len() as i64)
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .body(ByteStream::from(chunk.to_vec()))
                    .customize()
                    .config_override(
                        aws_sdk_s3::config::Builder::new().timeout_config(timeouts(chunk.len())),
                    );
                tasks.spawn(async move { (part_number, request.send().await) });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (part_number, result) = joined.map_err(|e| {
                Error::storage(
                    format!("uploading a part of {} failed: {e}", self.url(key)),
                    true,
                )
            })?;
            let out = result.map_err(|e| {
                self.map_err(e, &format!("upload part {part_number} of"), Some(key))
            })?;
            parts.push(
                CompletedPart::builder()
                    .part_number(part_number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                    .build(),
            );
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }

    /// Downloads `key` (or a byte range of it), retrying when the connection
    /// breaks during the body.
    async fn download(&self, key: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .set_range(
                    range.map(|(offset, length)| format!("bytes={offset}-{}", offset + length - 1)),
                )
                .send()
                .await
                .map_err(|e| self.map_err(e, "read", Some(key)))?;
            let expected = out.content_length().unwrap_or(0).max(0) as usize;
            let mut body = out.body;
            let mut buf = Vec::with_capacity(expected);
            let result = async {
                while let Some(chunk) = body.try_next().await? {
                    buf.extend_from_slice(&chunk);
                }
                Ok::<_, aws_sdk_s3::primitives::ByteStreamError>(())
            }
            .await;
            match result {
                Ok(()) => return Ok(buf),
                Err(_) if attempt < BODY_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
                Err(e) => {
                    return Err(Error::storage(
                        format!(
                        "cannot read {}: the download broke off {attempt} times ({}); try again",
                        self.url(key),
                        chain(&e)
                    ),
                        true,
                    ))
                }
            }
        }
    }

    async fn list_async(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        let folder = self.folder(kind);
        // Packs live in sub-folders; everything else directly in its folder.
        let delimiter = (kind != Kind::Pack).then(|| "/".to_string());
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&folder)
                .set_delimiter(delimiter.clone())
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.map_err(e, "list", Some(&folder)))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let rest = key.strip_prefix(folder.as_str()).unwrap_or(key);
                let name = rest.rsplit('/').next().unwrap_or(rest);
                if name.is_empty() {
                    // A "folder" marker object some tools create.
                    continue;
                }
                out.push(ObjectInfo {
                    name: name.to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// An error and its causes, `: `-separated, without repeats.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn no_credentials(what: String, cause: String) -> Error {
    Error::storage(
        format!(
            "{what}: no usable S3 credentials ({cause}): set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or configure an AWS profile"
        ),
        false,
    )
}

impl ObjectStore for S3Store {
    fn location(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn exists(&self, kind: Kind, name: &str) -> Result<bool> {
        let key = self.key(kind, name);
        self.run(self.head(&key))
    }

    fn put(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        let key = self.key(kind, name);
        if data.len() > MULTIPART_THRESHOLD {
            self.run(self.put_multipart(&key, data))
        } else {
            self.run(self.put_single(&key, data))
        }
    }

    fn get(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        let key = self.key(kind, name);
        self.run(self.download(&key, None))
    }

    fn get_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let key = self.key(kind, name);
        if length == 0 {
            // An empty range cannot be expressed; still report a missing object.
            return if self.run(self.head(&key))? {
                Ok(Vec::new())
            } else {
                Err(Error::not_found(format!(
                    "cannot read {}: no such object",
                    self.url(&key)
                )))
            };
        }
        let data = self.run(self.download(&key, Some((offset, length))))?;
        if data.len() as u64 != length {
            return Err(Error::corrupt(format!(
                "{} is shorter than expected (wanted {length} bytes at offset {offset}, got {})",
                self.url(&key),
                data.len()
            )));
        }
        Ok(data)
    }

    fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        self.run(self.list_async(kind))
    }

    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        let key = self.key(kind, name);
        let result = self.run(async {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
        });
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.map_err(e, "delete", Some(&key));
                if err.kind() == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    fn create(&self) -> Result<()> {
        self.run(async {
            self.check_bucket().await?;
            let key = self.key(Kind::Config, "");
            if self.head(&key).await? {
                return Err(Error::usage(format!(
                    "{} already holds a repository (found {}): choose another bucket or prefix",
                    self.location(),
                    self.url(&key)
                )));
            }
            Ok(())
        })
    }
}
