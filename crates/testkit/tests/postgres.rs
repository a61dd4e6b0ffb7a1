//! The PostgreSQL harness starts a working cluster and cleans up.

use testkit::Postgres;

#[test]
fn postgres_starts_and_answers() {
    let pg = Postgres::start();
    assert_eq!(pg.psql("postgres", "select 1"), "1");
    assert_eq!(pg.psql("postgres", "select current_user"), "postgres");

    pg.psql("postgres", "create database app");
    pg.psql("app", "create table t (id int primary key, v text)");
    pg.psql("app", "insert into t values (1, 'a'), (2, 'b')");
    assert_eq!(pg.psql("app", "select count(*) from t"), "2");

    // The conninfo reaches the server over TCP on 127.0.0.1.
    let out = pg
        .client_command("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "select inet_server_addr(), inet_server_port()",
        ])
        .arg(pg.conninfo("app"))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("127.0.0.1|{}", pg.port())
    );
    assert!(pg.bin("pg_dump").exists());
    assert!(pg.socket_dir().exists());
}

#[test]
fn postgres_drop_stops_server_and_removes_dir() {
    let pg = Postgres::start();
    let dir = pg.data_dir().to_path_buf();
    let port = pg.port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(pg);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!dir.exists(), "{dir:?} left behind");
}
