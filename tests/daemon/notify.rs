//! Notifications from the real daemon: the `[notify]` command and webhook
//! hear of successes (when asked) and failures, and a job's ping URL gets
//! start, success and failure pings the way healthchecks-type services
//! expect.

use super::support::*;
use crate::common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn the_command_the_webhook_and_the_ping_url_hear_how_jobs_go() {
    let env = Env::local();
    app_tree(&env);
    let hook = Capture::start();
    let pw = env.path("password");
    std::fs::write(&pw, env.password.as_deref().unwrap()).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let events = env.path("events.log");
    // No [retention]: every forget fails, permanently.
    let text = format!(
        "repository = {:?}\npassword_file = {:?}\nstate_dir = {:?}\n\n[[files]]\nname = \"app\"\npath = {:?}\n\n\
         [notify]\ncommand = 'echo \"$BACKUP_EVENT $BACKUP_JOB $BACKUP_JOB_KIND $BACKUP_ERROR\" >> {}'\n\
         webhook = {:?}\non = [\"success\", \"failure\"]\n\n\
         [[schedule]]\nname = \"snap\"\njob = \"create\"\ncron = \"*/2 * * * * *\"\nping_url = {:?}\n\n\
         [[schedule]]\nname = \"tidy\"\njob = \"forget\"\ncron = \"*/3 * * * * *\"\n",
        env.repo,
        pw.display().to_string(),
        env.path("state").display().to_string(),
        env.path("app").display().to_string(),
        events.display(),
        hook.url("/hook"),
        hook.url("/ping/snap-uuid"),
    );
    let config = env.path("backup.toml");
    std::fs::write(&config, text).unwrap();
    env.run(&["init"]).ok();
    let d = Daemon::start(&env, &config);
    let webhooks = || -> Vec<Value> {
        hook.seen()
            .iter()
            .filter(|c| c.path == "/hook")
            .map(|c| serde_json::from_str(&c.body).unwrap())
            .collect()
    };
    d.wait_for(
        "a success and a failure at the webhook, and a success ping",
        Duration::from_secs(60),
        || {
            // The ping of a success goes after the command and the webhook.
            let pinged = hook.seen().iter().any(|c| c.path == "/ping/snap-uuid");
            let w = webhooks();
            pinged
                && w.iter()
                    .any(|v| v["event"] == "success" && v["job"] == "snap")
                && w.iter()
                    .any(|v| v["event"] == "failure" && v["job"] == "tidy")
        },
    );
    let w = webhooks();
    let failure = w.iter().find(|v| v["event"] == "failure").unwrap();
    assert_eq!(failure["kind"], "forget");
    assert!(
        failure["error"].as_str().unwrap().contains("[retention]"),
        "{failure}"
    );
    assert!(failure["time"].as_str().is_some() && failure["host"].as_str().is_some());
    // Starts are only pinged; the webhook never hears of them.
    assert!(w.iter().all(|v| v["event"] != "start"), "{w:?}");
    let pings: Vec<Captured> = hook
        .seen()
        .into_iter()
        .filter(|c| c.path.starts_with("/ping/"))
        .collect();
    assert!(
        pings.iter().any(|c| c.path == "/ping/snap-uuid/start"),
        "{pings:?}"
    );
    let success = pings
        .iter()
        .find(|c| c.path == "/ping/snap-uuid")
        .expect("a success ping");
    assert_eq!(success.method, "POST");
    assert!(success.body.contains("snapshot"), "{success:?}");
    assert!(
        !pings.iter().any(|c| c.path.ends_with("/fail")),
        "{pings:?}"
    );
    // The command ran with the event in its environment.
    d.wait_for("the command's lines", Duration::from_secs(20), || {
        let log = std::fs::read_to_string(&events).unwrap_or_default();
        log.lines().any(|l| l.starts_with("success snap create"))
            && log
                .lines()
                .any(|l| l.starts_with("failure tidy forget") && l.contains("[retention]"))
    });
}
