//! `S3Store` against a real Garage server (see testkit).

use backup_core::store::{Kind, ObjectStore, S3Settings, S3Store};
use backup_core::ErrorKind;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use testkit::{random_bytes, Garage};

fn settings(garage: &Garage) -> S3Settings {
    S3Settings {
        endpoint: Some(garage.endpoint()),
        region: Some(garage.region().to_string()),
        path_style: true,
        access_key_id: Some(garage.access_key().to_string()),
        secret_access_key: Some(garage.secret_key().to_string()),
    }
}

fn store(garage: &Garage, prefix: &str) -> S3Store {
    S3Store::new(
        garage.bucket().to_string(),
        prefix.to_string(),
        settings(garage),
    )
    .expect("open store")
}

fn pack_name(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A raw SDK client for checks the store does not expose.
fn raw_client(garage: &Garage) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version_latest()
        .endpoint_url(garage.endpoint())
        .region(aws_sdk_s3::config::Region::new(garage.region().to_string()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            garage.access_key(),
            garage.secret_key(),
            None,
            None,
            "test",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn put_get_list_delete_roundtrip() {
    let garage = Garage::start();
    let s = store(&garage, "repos/one");
    assert_eq!(s.location(), format!("s3://{}/repos/one", garage.bucket()));

    s.create().expect("create on an empty prefix");
    assert!(!s.exists(Kind::Config, "").unwrap());
    s.put(Kind::Config, "", b"config-bytes").unwrap();
    assert!(s.exists(Kind::Config, "").unwrap());
    assert_eq!(s.get(Kind::Config, "").unwrap(), b"config-bytes");

    let err = s.create().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    assert!(
        err.to_string().contains("already holds a repository"),
        "{err}"
    );

    for name in ["k1", "k2"] {
        s.put(Kind::Key, name, name.as_bytes()).unwrap();
    }
    s.put(Kind::Index, "i1", b"index").unwrap();
    s.put(Kind::Snapshot, "s1", b"snapshot").unwrap();
    s.put(Kind::Lock, "l1", b"").unwrap();

    // Packs spread over data/xx/ folders.
    let mut packs: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            let data = random_bytes(i as u64 + 1, 1000 + i * 37);
            (pack_name(&data), data)
        })
        .collect();
    for (name, data) in &packs {
        s.put(Kind::Pack, name, data).unwrap();
    }
    packs.sort();
    let listed = s.list(Kind::Pack).unwrap();
    let expected: Vec<(String, u64)> = packs
        .iter()
        .map(|(n, d)| (n.clone(), d.len() as u64))
        .collect();
    let got: Vec<(String, u64)> = listed.iter().map(|o| (o.name.clone(), o.size)).collect();
    assert_eq!(got, expected);

    let names =
        |kind| -> Vec<String> { s.list(kind).unwrap().into_iter().map(|o| o.name).collect() };
    assert_eq!(names(Kind::Key), ["k1", "k2"]);
    assert_eq!(names(Kind::Index), ["i1"]);
    assert_eq!(names(Kind::Snapshot), ["s1"]);
    assert_eq!(names(Kind::Lock), ["l1"]);
    assert_eq!(names(Kind::Config), ["config"]);
    assert_eq!(s.list(Kind::Lock).unwrap()[0].size, 0);
    assert_eq!(s.get(Kind::Lock, "l1").unwrap(), b"");

    // Ranges.
    let (name, data) = &packs[3];
    assert_eq!(s.get(Kind::Pack, name).unwrap(), *data);
    assert_eq!(
        s.get_range(Kind::Pack, name, 10, 100).unwrap(),
        data[10..110]
    );
    assert_eq!(
        s.get_range(Kind::Pack, name, data.len() as u64 - 5, 5)
            .unwrap(),
        data[data.len() - 5..]
    );
    assert_eq!(s.get_range(Kind::Pack, name, 0, 0).unwrap(), b"");
    let err = s
        .get_range(Kind::Pack, name, data.len() as u64 - 5, 10)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    let err = s
        .get_range(Kind::Pack, name, data.len() as u64 + 10, 10)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");

    // Not found.
    let err = s.get(Kind::Snapshot, "nope").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = s.get_range(Kind::Pack, "00ff", 0, 10).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = s.get_range(Kind::Pack, "00ff", 0, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!s.exists(Kind::Snapshot, "nope").unwrap());

    // Overwrite, delete, delete again.
    s.put(Kind::Snapshot, "s1", b"snapshot v2").unwrap();
    assert_eq!(s.get(Kind::Snapshot, "s1").unwrap(), b"snapshot v2");
    s.delete(Kind::Snapshot, "s1").unwrap();
    s.delete(Kind::Snapshot, "s1").unwrap();
    assert!(!s.exists(Kind::Snapshot, "s1").unwrap());
    assert!(names(Kind::Snapshot).is_empty());

    // Another prefix of the same bucket sees nothing of this one.
    let other = store(&garage, "repos/two");
    assert!(other.list(Kind::Pack).unwrap().is_empty());
    assert!(!other.exists(Kind::Config, "").unwrap());
    other.create().unwrap();
}

#[test]
fn key_layout_with_and_without_prefix() {
    let garage = Garage::start();
    let root = store(&garage, "");
    assert_eq!(root.location(), format!("s3://{}", garage.bucket()));
    // Root store: `keys/config` has no leading slash ...
    root.put(Kind::Key, "config", b"as a key").unwrap();
    // ... so a store under prefix `keys` finds it as its config object;
    // slashes around a prefix do not matter.
    let nested = store(&garage, "/keys/");
    assert_eq!(nested.get(Kind::Config, "").unwrap(), b"as a key");
    assert!(nested.exists(Kind::Config, "").unwrap());

    let client = raw_client(&garage);
    let rt = runtime();
    let pack = pack_name(b"pack");
    root.put(Kind::Pack, &pack, b"pack").unwrap();
    let keys: Vec<String> = rt.block_on(async {
        client
            .list_objects_v2()
            .bucket(garage.bucket())
            .send()
            .await
            .unwrap()
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    });
    assert_eq!(
        keys,
        [
            format!("data/{}/{pack}", &pack[..2]),
            "keys/config".to_string()
        ]
    );
    assert_eq!(root.list(Kind::Config).unwrap().len(), 0);
}

#[test]
fn list_paginates_past_1000_objects() {
    let garage = Garage::start();
    let s = std::sync::Arc::new(store(&garage, "many"));
    let count = 1100;
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s = s.clone();
            scope.spawn(move || {
                for i in (t..count).step_by(4) {
                    s.put(Kind::Lock, &format!("lock-{i:05}"), b"x").unwrap();
                }
            });
        }
    });
    let listed = s.list(Kind::Lock).unwrap();
    assert_eq!(listed.len(), count);
    assert_eq!(listed[0].name, "lock-00000");
    assert_eq!(listed[count - 1].name, format!("lock-{:05}", count - 1));
}

#[test]
fn large_object_goes_up_in_parts_with_checksums() {
    let garage = Garage::start();
    let s = store(&garage, "big");
    let data = random_bytes(7, 70 * 1024 * 1024 + 123);
    let name = pack_name(&data);
    s.put(Kind::Pack, &name, &data).unwrap();
    let listed = s.list(Kind::Pack).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, data.len() as u64);
    let back = s.get(Kind::Pack, &name).unwrap();
    assert!(back == data, "the object came back different");
    // A range across the first part boundary (16 MiB).
    let boundary = 16 * 1024 * 1024u64;
    assert_eq!(
        s.get_range(Kind::Pack, &name, boundary - 10, 20).unwrap(),
        data[boundary as usize - 10..boundary as usize + 10]
    );

    // The server stored the object as a multipart upload (its ETag ends
    // with the number of parts) with a checksum.
    let client = raw_client(&garage);
    let key = format!("big/data/{}/{name}", &name[..2]);
    let head = runtime().block_on(async {
        client
            .head_object()
            .bucket(garage.bucket())
            .key(&key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap()
    });
    assert!(
        head.e_tag().unwrap_or_default().ends_with("-5\""),
        "{:?}",
        head.e_tag()
    );
    assert!(head.checksum_crc32().is_some(), "{head:?}");
}

#[test]
fn uploads_carry_a_checksum_that_the_server_checks() {
    let garage = Garage::start();
    let s = store(&garage, "sums");
    s.put(Kind::Index, "i1", b"some index bytes").unwrap();
    let client = raw_client(&garage);
    let rt = runtime();
    let head = rt.block_on(async {
        client
            .head_object()
            .bucket(garage.bucket())
            .key("sums/index/i1")
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap()
    });
    assert!(head.checksum_crc32().is_some(), "{head:?}");

    // A body that does not match its checksum is refused.
    let result = rt.block_on(async {
        client
            .put_object()
            .bucket(garage.bucket())
            .key("sums/index/bad")
            .checksum_crc32("AAAAAA==")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"data"))
            .send()
            .await
    });
    assert!(result.is_err(), "Garage accepted a wrong checksum");
    assert!(!s.exists(Kind::Index, "bad").unwrap());
}

#[test]
fn wrong_credentials_say_so() {
    let garage = Garage::start();
    for (id, secret) in [
        (garage.access_key().to_string(), "0".repeat(64)),
        (
            "GK0000000000000000000000".to_string(),
            garage.secret_key().to_string(),
        ),
    ] {
        let s = S3Store::new(
            garage.bucket().to_string(),
            "p".to_string(),
            S3Settings {
                access_key_id: Some(id),
                secret_access_key: Some(secret),
                ..settings(&garage)
            },
        )
        .unwrap();
        let started = Instant::now();
        for err in [
            s.put(Kind::Key, "k", b"x").unwrap_err(),
            s.get(Kind::Key, "k").unwrap_err(),
            s.list(Kind::Key).unwrap_err(),
            s.exists(Kind::Key, "k").unwrap_err(),
            s.create().unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
            assert!(!err.is_retryable(), "{err}");
            let msg = err.to_string();
            assert!(msg.contains("access denied"), "{msg}");
            assert!(msg.contains("AWS_ACCESS_KEY_ID"), "{msg}");
        }
        assert!(started.elapsed() < Duration::from_secs(20), "retried a 403");
    }
}

#[test]
fn missing_bucket_says_so() {
    let garage = Garage::start();
    let s = S3Store::new(
        "no-such-bucket".to_string(),
        "p".to_string(),
        settings(&garage),
    )
    .unwrap();
    for err in [
        s.create().unwrap_err(),
        s.put(Kind::Key, "k", b"x").unwrap_err(),
        s.get(Kind::Key, "k").unwrap_err(),
        s.list(Kind::Pack).unwrap_err(),
        s.exists(Kind::Config, "").unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("bucket no-such-bucket does not exist"),
            "{msg}"
        );
        assert!(msg.contains("create it first"), "{msg}");
    }
    // Once created, the same store works.
    garage.create_bucket("no-such-bucket");
    s.create().unwrap();
    s.put(Kind::Key, "k", b"x").unwrap();
    assert_eq!(s.get(Kind::Key, "k").unwrap(), b"x");
}

#[test]
fn unreachable_server_fails_fast_and_retryable() {
    let mut garage = Garage::start();
    let s = store(&garage, "p");
    s.put(Kind::Key, "k", b"x").unwrap();
    garage.kill();
    let started = Instant::now();
    let err = s.get(Kind::Key, "k").unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    assert!(err.is_retryable(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("cannot reach S3 endpoint"), "{msg}");
    assert!(msg.contains(&garage.endpoint()), "{msg}");

    let started = Instant::now();
    let err = s.put(Kind::Key, "k2", b"y").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        err.to_string().contains("cannot reach S3 endpoint"),
        "{err}"
    );
}

#[test]
fn works_inside_another_tokio_runtime() {
    let garage = Garage::start();
    let s = std::sync::Arc::new(store(&garage, "async"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s2 = s.clone();
        tokio::task::spawn_blocking(move || {
            s2.put(Kind::Snapshot, "s1", b"from spawn_blocking")
                .unwrap();
            assert_eq!(
                s2.get(Kind::Snapshot, "s1").unwrap(),
                b"from spawn_blocking"
            );
        })
        .await
        .unwrap();
        // Directly on a runtime thread too (blocking it, but working).
        assert_eq!(s.list(Kind::Snapshot).unwrap().len(), 1);
        // Opening and dropping a store inside a runtime does not panic.
        let inner = store(&garage, "async");
        assert!(inner.exists(Kind::Snapshot, "s1").unwrap());
        drop(inner);
    });
}

/// A loopback HTTP server that answers every request with `status` and
/// counts the requests; it stops by itself after 60 s.
fn failing_server(
    status: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (endpoint, count)
}

#[test]
fn transient_server_errors_are_retried_five_times() {
    let (endpoint, count) = failing_server("503 Service Unavailable");
    let s = S3Store::new(
        "bucket".to_string(),
        String::new(),
        S3Settings {
            endpoint: Some(endpoint),
            region: Some("garage".to_string()),
            path_style: true,
            access_key_id: Some("GK1".to_string()),
            secret_access_key: Some("secret".to_string()),
        },
    )
    .unwrap();
    let started = Instant::now();
    let err = s.get(Kind::Index, "i1").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 5, "{err}");
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("try again later"), "{err}");
}
