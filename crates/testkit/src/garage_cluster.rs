//! A throwaway Garage cluster of several nodes on loopback, for tests of
//! what a backup does when some of them go down.

use crate::garage::{random_hex, s3_env, Server, REGION};
use crate::Garage;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// The replication factor of the cluster: every object on three nodes,
/// written and read with a quorum of two (Garage's default consistency
/// mode).
pub const REPLICATION_FACTOR: usize = 3;

/// How long a node or the cluster may take to come up or to heal.
const HEAL_TIMEOUT: Duration = Duration::from_secs(120);

/// Several Garage servers on loopback ports, each with its own temporary
/// directory, sharing one `rpc_secret`, connected to each other, every node
/// in the layout (1G each, zones `dc1`, `dc2`, `dc3`, ...) with replication
/// factor 3; one bucket and one access key that may read, write and own it.
///
/// S3 requests go to node 0 ([`GarageCluster::endpoint`]): kill the others
/// to take storage nodes away, not node 0.
///
/// ```no_run
/// let mut cluster = testkit::GarageCluster::start(3);
/// cluster.kill(2);
/// // ... writes still reach a quorum of 2 ...
/// cluster.restart(2);
/// ```
///
/// Dropping the handle kills every node and removes their data.
#[derive(Debug)]
pub struct GarageCluster {
    nodes: Vec<Server>,
    /// Full node ids, `<hex>@127.0.0.1:<rpc port>`.
    ids: Vec<String>,
    bucket: String,
    access_key: String,
    secret_key: String,
}

impl GarageCluster {
    /// Starts `nodes` servers (at least [`REPLICATION_FACTOR`]) with a bucket
    /// named `test-bucket`, and waits until the cluster is healthy.
    ///
    /// Panics (with the logs) when Garage is missing or does not come up.
    pub fn start(nodes: usize) -> GarageCluster {
        assert!(
            nodes >= REPLICATION_FACTOR,
            "a cluster with replication factor {REPLICATION_FACTOR} needs at least \
             {REPLICATION_FACTOR} nodes, not {nodes}"
        );
        let bin = Garage::required_binary();
        // Ports picked as free may be taken before Garage binds them: try
        // again with fresh ones.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin, nodes, "test-bucket") {
                Ok(cluster) => return cluster,
                Err(e) => last_error = e,
            }
        }
        panic!("the Garage cluster did not start: {last_error}");
    }

    fn try_start(bin: &Path, n: usize, bucket: &str) -> Result<GarageCluster, String> {
        let secret = random_hex(32);
        let mut nodes = (0..n)
            .map(|i| {
                Server::create(
                    bin,
                    &format!("testkit-garage-node{i}-"),
                    &secret,
                    REPLICATION_FACTOR,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        // On error the nodes are dropped, which kills them.
        for node in &mut nodes {
            node.spawn()?;
        }
        for node in &mut nodes {
            node.wait_up()?;
        }
        let ids = nodes
            .iter()
            .map(Server::node_id)
            .collect::<Result<Vec<_>, _>>()?;
        // A full mesh at once rather than waiting for peer discovery.
        for (i, node) in nodes.iter().enumerate() {
            for id in &ids[i + 1..] {
                node.try_cli(&["node", "connect", id])?;
            }
        }
        let mut cluster = GarageCluster {
            nodes,
            ids,
            bucket: bucket.to_string(),
            access_key: String::new(),
            secret_key: String::new(),
        };
        cluster.wait_health(0, "node 0 did not see every node", |h| {
            h.connected == Some(n)
        })?;
        let first = &cluster.nodes[0];
        for (i, id) in cluster.ids.iter().enumerate() {
            let id = id.split('@').next().unwrap_or("");
            let zone = format!("dc{}", i % REPLICATION_FACTOR + 1);
            first.try_cli(&["layout", "assign", "-z", &zone, "-c", "1G", id])?;
        }
        first.try_cli(&["layout", "apply", "--version", "1"])?;
        cluster.wait_connected()?;
        let (access_key, secret_key) = cluster.nodes[0].create_key()?;
        cluster.nodes[0].create_bucket(bucket)?;
        cluster.access_key = access_key;
        cluster.secret_key = secret_key;
        Ok(cluster)
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes (never: it has at least three).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Kills node `i` (SIGKILL) and waits for it. Its data stays for
    /// [`GarageCluster::restart`].
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on the same ports and data, and waits until
    /// the cluster is healthy again: every running node sees every running
    /// node up (with all of them running, Garage reports the cluster
    /// `healthy`), node `i`'s S3 API answers, and the metadata tables are
    /// in sync ([`GarageCluster::sync_tables`]).
    ///
    /// Panics (with the logs) when it does not come back within two
    /// minutes.
    pub fn restart(&mut self, i: usize) {
        self.restart_without_sync(i);
        self.sync_tables();
    }

    /// Like [`GarageCluster::restart`] but without the table sync: node `i`
    /// still holds what it held when it was killed, and nothing tells it of
    /// the writes and deletions it missed until Garage's own anti-entropy
    /// runs (20 s after a node starts, and every 10 minutes). Meanwhile
    /// quorum reads that involve it merge its stale entries, and a listing
    /// may show objects deleted while it was down (each node filters out
    /// the deleted entries it knows of before the merge).
    pub fn restart_without_sync(&mut self, i: usize) {
        let result = (|| {
            self.nodes[i].spawn()?;
            self.nodes[i].wait_up()?;
            // The node finds its peers again on its own (they are in its
            // metadata), and they it, but only after several seconds:
            // connect them at once, both ways.
            for j in 0..self.nodes.len() {
                if j != i && self.nodes[j].is_running() {
                    self.nodes[i].try_cli(&["node", "connect", &self.ids[j]])?;
                    self.nodes[j].try_cli(&["node", "connect", &self.ids[i]])?;
                }
            }
            self.wait_connected()?;
            self.nodes[i].wait_until("the S3 API does not answer", HEAL_TIMEOUT, |node| {
                s3_answers(node.s3_port)
            })
        })();
        if let Err(e) = result {
            panic!("node {i} did not come back: {e}");
        }
    }

    /// Runs a full sync of the metadata tables on every running node
    /// (`garage repair --yes tables`) and waits until their sync, Merkle
    /// and queue workers are idle with empty queues: afterwards every
    /// running node knows of every write and deletion any of them saw.
    ///
    /// Panics when the sync does not finish within two minutes.
    pub fn sync_tables(&mut self) {
        let result = (|| {
            let running: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].is_running())
                .collect();
            for &i in &running {
                self.nodes[i].try_cli(&["repair", "--yes", "tables"])?;
            }
            // A repair only queues the work: give the workers a moment to
            // take it before an idle list can mean "done".
            std::thread::sleep(Duration::from_millis(500));
            for &i in &running {
                let mut last = String::new();
                self.nodes[i]
                    .wait_until("the table sync did not finish", HEAL_TIMEOUT, |node| {
                        match table_workers_busy(node) {
                            Ok(busy) => {
                                last = busy.join(", ");
                                busy.is_empty()
                            }
                            Err(e) => {
                                last = e;
                                false
                            }
                        }
                    })
                    .map_err(|e| format!("{e}\nstill busy on node {i}: {last}"))?;
            }
            Ok::<(), String>(())
        })();
        if let Err(e) = result {
            panic!("the metadata tables did not sync: {e}");
        }
    }

    /// Whether node `i` is running.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i].is_running()
    }

    /// Node 0's S3 endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.node_endpoint(0)
    }

    /// Node `i`'s S3 endpoint URL.
    pub fn node_endpoint(&self, i: usize) -> String {
        self.nodes[i].endpoint()
    }

    /// The environment a child process needs to reach the cluster through
    /// node 0: the same variables as [`Garage::env`].
    pub fn env(&self) -> Vec<(String, String)> {
        s3_env(&self.endpoint(), &self.access_key, &self.secret_key)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 region (`garage`).
    pub fn region(&self) -> &str {
        REGION
    }

    /// The access key id.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret access key.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Runs the `garage` CLI against node `i` and returns its output;
    /// panics when it fails.
    pub fn cli(&self, i: usize, args: &[&str]) -> String {
        self.nodes[i].cli(args)
    }

    /// Node `i`'s config file.
    pub fn config_path(&self, i: usize) -> &Path {
        self.nodes[i].config_path()
    }

    /// Node `i`'s temporary directory (its `meta` and `data` are inside).
    pub fn dir(&self, i: usize) -> &Path {
        self.nodes[i].dir()
    }

    /// Node `i`'s log so far (every run of the node appends to it).
    pub fn log(&self, i: usize) -> String {
        self.nodes[i].log()
    }

    /// Waits until every running node sees every running node up, and, when
    /// all nodes run, Garage reports the cluster `healthy`.
    fn wait_connected(&mut self) -> Result<(), String> {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        let all = running.len() == self.nodes.len();
        let up = running.len();
        for &i in &running {
            self.wait_health(i, "the cluster did not heal", |h| {
                h.storage_up == Some(up) && h.connected == Some(up) && (!all || h.healthy)
            })?;
        }
        Ok(())
    }

    /// Waits until node `i`'s `GetClusterHealth` satisfies `ok`.
    fn wait_health(
        &mut self,
        i: usize,
        what: &str,
        ok: impl Fn(&Health) -> bool,
    ) -> Result<(), String> {
        let mut last = String::new();
        let result = self.nodes[i].wait_until(what, HEAL_TIMEOUT, |node| {
            match node.try_cli(&["json-api", "GetClusterHealth"]) {
                Ok(text) => {
                    let healthy = ok(&Health::parse(&text));
                    last = text;
                    healthy
                }
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        result.map_err(|e| {
            format!(
                "{e}\nlast health of node {i}:\n{last}\nlogs of the other nodes:\n{}",
                self.other_logs(i)
            )
        })
    }

    fn other_logs(&self, except: usize) -> String {
        (0..self.nodes.len())
            .filter(|&j| j != except)
            .map(|j| format!("--- node {j}:\n{}", self.nodes[j].log_tail(1500)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        // Every process first, then the directories (with the fields).
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

/// What the harness reads of `garage json-api GetClusterHealth`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Health {
    healthy: bool,
    connected: Option<usize>,
    storage_up: Option<usize>,
}

impl Health {
    fn parse(text: &str) -> Health {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return Health::default();
        };
        let number = |name: &str| v[name].as_u64().map(|n| n as usize);
        Health {
            healthy: v["status"] == "healthy",
            connected: number("connectedNodes"),
            storage_up: number("storageNodesUp"),
        }
    }
}

/// The metadata-table workers (`<table> sync`, `<table> Merkle`,
/// `<table> queue`) of `node` that are busy or have a queue.
fn table_workers_busy(node: &Server) -> Result<Vec<String>, String> {
    let text = node.try_cli(&[
        "json-api",
        "ListWorkers",
        r#"{"node":"self","body":{"busyOnly":false,"errorOnly":false}}"#,
    ])?;
    Ok(busy_table_workers(&text))
}

/// Parses `ListWorkers` output into the busy table workers, as
/// `name (state, queue n)`.
fn busy_table_workers(text: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return vec![format!("unreadable worker list: {text}")];
    };
    let workers = v["success"]
        .as_object()
        .into_iter()
        .flat_map(|nodes| nodes.values())
        .filter_map(Value::as_array)
        .flatten();
    workers
        .filter(|w| {
            let name = w["name"].as_str().unwrap_or("");
            [" sync", " Merkle", " queue"]
                .iter()
                .any(|s| name.ends_with(s))
        })
        .filter(|w| w["state"] != "idle" || w["queueLength"].as_u64().unwrap_or(0) > 0)
        .map(|w| {
            format!(
                "{} ({}, queue {})",
                w["name"].as_str().unwrap_or("?"),
                w["state"].as_str().unwrap_or("?"),
                w["queueLength"]
            )
        })
        .collect()
}

/// Whether an HTTP request to the S3 port gets an HTTP response.
fn s3_answers(port: u16) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head)?;
        Ok(&head == b"HTTP/")
    };
    attempt().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::{busy_table_workers, Health};

    #[test]
    fn parses_cluster_health() {
        let text = r#"{"connectedNodes": 2, "knownNodes": 3, "partitions": 256,
            "partitionsAllOk": 0, "partitionsQuorum": 256, "status": "degraded",
            "storageNodes": 3, "storageNodesUp": 2}"#;
        assert_eq!(
            Health::parse(text),
            Health {
                healthy: false,
                connected: Some(2),
                storage_up: Some(2)
            }
        );
        let healthy = text.replace("degraded", "healthy");
        assert!(Health::parse(&healthy).healthy);
        assert_eq!(Health::parse("garbage"), Health::default());
    }

    #[test]
    fn finds_busy_table_workers() {
        let text = r#"{"error": {}, "success": {"e73a": [
            {"name": "object sync", "state": "busy", "queueLength": 12},
            {"name": "version Merkle", "state": "idle", "queueLength": 3},
            {"name": "key queue", "state": "idle", "queueLength": 0},
            {"name": "Block resync worker #1", "state": "busy", "queueLength": 5},
            {"name": "object lifecycle worker", "state": "idle", "queueLength": null}
        ]}}"#;
        assert_eq!(
            busy_table_workers(text),
            [
                "object sync (busy, queue 12)",
                "version Merkle (idle, queue 3)"
            ]
        );
        let idle = r#"{"error": {}, "success": {"e73a": [
            {"name": "object sync", "state": "idle", "queueLength": 0}]}}"#;
        assert!(busy_table_workers(idle).is_empty());
    }
}
