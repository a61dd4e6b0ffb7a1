//! The Garage cluster harness starts three connected nodes, kills and
//! restarts one on the same ports and data, and cleans up.

use testkit::GarageCluster;

#[test]
fn cluster_starts_kills_restarts_and_cleans_up() {
    let mut cluster = GarageCluster::start(3);
    assert_eq!(cluster.len(), 3);
    assert!(cluster.endpoint().starts_with("http://127.0.0.1:"));
    let status = cluster.cli(0, &["status"]);
    assert!(!status.contains("FAILED NODES"), "{status}");
    let layout = cluster.cli(0, &["layout", "show"]);
    for zone in ["dc1", "dc2", "dc3"] {
        assert!(layout.contains(zone), "{zone} missing:\n{layout}");
    }
    let info = cluster.cli(1, &["bucket", "info", cluster.bucket()]);
    assert!(info.contains(cluster.access_key()), "{info}");
    assert!(info.contains("RWO"), "key lacks read/write/owner: {info}");
    let env = cluster.env();
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(cluster.endpoint()));
    assert_eq!(get("BACKUP_S3_PATH_STYLE").as_deref(), Some("true"));

    let port = cluster
        .node_endpoint(2)
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    cluster.kill(2);
    assert!(!cluster.is_running(2));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    cluster.restart(2);
    assert!(cluster.is_running(2));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let health = cluster.cli(2, &["json-api", "GetClusterHealth"]);
    assert!(health.contains("\"healthy\""), "{health}");

    let dirs: Vec<_> = (0..3).map(|i| cluster.dir(i).to_path_buf()).collect();
    drop(cluster);
    for dir in dirs {
        assert!(!dir.exists(), "{dir:?} left behind");
    }
}
