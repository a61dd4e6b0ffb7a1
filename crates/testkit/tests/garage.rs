//! The Garage harness starts a working single-node server and cleans up.

use testkit::Garage;

#[test]
fn garage_starts_with_bucket_and_key() {
    let mut garage = Garage::start();
    assert!(garage.endpoint().starts_with("http://127.0.0.1:"));
    assert_eq!(garage.region(), "garage");
    assert!(
        garage.access_key().starts_with("GK"),
        "{}",
        garage.access_key()
    );
    assert_eq!(garage.secret_key().len(), 64);

    let info = garage.cli(&["bucket", "info", garage.bucket()]);
    assert!(info.contains(garage.bucket()), "{info}");
    assert!(
        info.contains(garage.access_key()),
        "key not allowed on bucket: {info}"
    );
    assert!(info.contains("RWO"), "key lacks read/write/owner: {info}");

    garage.create_bucket("second-bucket");
    let info = garage.cli(&["bucket", "info", "second-bucket"]);
    assert!(info.contains(garage.access_key()), "{info}");

    let env = garage.env();
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(garage.endpoint()));
    assert_eq!(
        get("AWS_ACCESS_KEY_ID").as_deref(),
        Some(garage.access_key())
    );
    assert_eq!(
        get("AWS_SECRET_ACCESS_KEY").as_deref(),
        Some(garage.secret_key())
    );
    assert_eq!(get("AWS_REGION").as_deref(), Some("garage"));
    assert_eq!(get("BACKUP_S3_PATH_STYLE").as_deref(), Some("true"));

    // The S3 API answers on its port.
    assert!(std::net::TcpStream::connect(("127.0.0.1", garage.s3_port())).is_ok());
    assert!(garage.is_running());
    garage.stop();
    assert!(!garage.is_running());
    assert!(std::net::TcpStream::connect(("127.0.0.1", garage.s3_port())).is_err());
}

#[test]
fn garage_kill_makes_endpoint_unreachable_and_drop_cleans_up() {
    let mut garage = Garage::start_with_bucket("kill-me");
    let dir = garage.dir().to_path_buf();
    let port = garage.s3_port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    garage.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    drop(garage);
    assert!(!dir.exists(), "{dir:?} left behind");
}
