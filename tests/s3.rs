//! The same commands against a real Garage S3 server.

use crate::common::*;
use testkit::Garage;

fn s3_env(garage: &Garage, prefix: &str) -> Env {
    let mut env = Env::local();
    env.repo = format!("s3://{}/{prefix}", garage.bucket());
    env.extra = garage.env();
    env
}

#[test]
fn full_cycle_against_s3() {
    let garage = Garage::start();
    let env = s3_env(&garage, "dms/prod");
    let src = env.path("srv/app");
    fixture(&src);
    std::fs::write(src.join("big.bin"), random_bytes(77, 5_000_000)).unwrap();
    env.init();
    env.run(&["init"]).fails(2, "already holds a repository");
    let first = env.create(&[&src], &["--tag", "pre-deploy", "--label", "v1.0 go-live"]);
    let second = env.create(&[&src], &[]);
    assert_eq!(second["new_bytes"], 0, "{second}");
    let list = env.run(&["snapshots", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["label"], "v1.0 go-live");
    env.run(&["verify", "--read-data"]).ok();
    let id = first["id"].as_str().unwrap();
    let target = env.path("restore");
    env.run(&["restore", &id[..8], "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(digest(&src), digest(&restored(&target, &src)));
    std::fs::write(src.join("web/index.html"), b"changed").unwrap();
    let d = env.run(&["diff", "latest", "--live"]).ok().stdout;
    assert!(d.contains("1 modified"), "{d}");
    let bundle = env.path("b.tar");
    env.run(&["export", "latest", "-o", bundle.to_str().unwrap()])
        .ok();
    env.run(&["import", bundle.to_str().unwrap()]).ok();
    // A second repository under another prefix of the same bucket is independent.
    let other = s3_env(&garage, "dms/staging");
    other.init();
    assert_eq!(other.listed_snapshots(), 0);
}

#[test]
fn s3_settings_can_come_from_a_config_file() {
    let garage = Garage::start();
    let mut env = Env::local();
    let cfg = env.path("backup.toml");
    std::fs::write(
        &cfg,
        format!(
            "repository = \"s3://{}/cfg\"\n[s3]\nendpoint = \"{}\"\nregion = \"{}\"\npath_style = true\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            garage.bucket(),
            garage.endpoint(),
            garage.region(),
            garage.access_key(),
            garage.secret_key()
        ),
    )
    .unwrap();
    env.repo = String::new();
    env.extra
        .push(("BACKUP_CONFIG".into(), cfg.display().to_string()));
    env.extra
        .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    let run = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.env_remove("BACKUP_REPOSITORY");
        Run::from(c.output().unwrap())
    };
    run(&["init"]).ok();
    let src = env.path("t");
    fixture(&src);
    run(&["create", "--files", src.to_str().unwrap()]).ok();
    run(&["verify", "--read-data"]).ok();
}

#[test]
fn wrong_credentials_missing_bucket_and_unreachable_server_are_clear_errors() {
    let mut garage = Garage::start();
    let src_env = s3_env(&garage, "x");
    let src = src_env.path("t");
    fixture(&src);

    let mut bad_key = s3_env(&garage, "x");
    for (k, v) in bad_key.extra.iter_mut() {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "0".repeat(64);
        }
    }
    bad_key.run(&["init"]).fails(6, "credentials");

    let mut no_bucket = s3_env(&garage, "x");
    no_bucket.repo = "s3://no-such-bucket/x".into();
    no_bucket.run(&["init"]).fails(6, "no-such-bucket");

    let env = s3_env(&garage, "x");
    env.init();
    env.create(&[&src], &[]);
    garage.kill();
    let r = env.run(&["snapshots"]);
    r.fails(6, "cannot reach");
    let r = env.run(&["create", "--files", src.to_str().unwrap()]);
    assert_eq!(r.code, 6, "{r:?}");
}
