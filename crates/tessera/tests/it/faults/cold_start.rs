//! Four nodes cold-starting at the same moment on one empty PostgreSQL database, twenty
//! times (a fresh database each time): every node starts every time, and all four publish the
//! same signing keys. First-start initialisation (migrations, the key ring, the secret key
//! file when nodes share a data directory) is create-or-read, never create-or-fail.

use super::beside;
use crate::durability::{Scratch, Server, jwks_kids};
use tessera_testkit::{Backend, TestDb, scratch_dir};

const NODES: usize = 4;
const ROUNDS: usize = 20;
const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_cold_start_together_on_an_empty_database() {
    for round in 0..ROUNDS {
        let (url, _db) = TestDb::fresh_url(Backend::Postgres).await.unwrap();
        // Even rounds: a configured secret key and a data directory per node (the documented
        // multi-node set-up). Odd rounds: one shared data directory and no configured key, so
        // the nodes race to create `secret.key` too.
        let shared = round % 2 == 1;
        let dirs: Vec<Scratch> = (0..if shared { 1 } else { NODES }).map(|_| Scratch(scratch_dir("cold").unwrap())).collect();
        let starts: Vec<_> = (0..NODES)
            .map(|n| {
                let dir = dirs[if shared { 0 } else { n }].0.clone();
                let url = url.clone();
                std::thread::spawn(move || {
                    let log = beside(&dir, &format!("node-{n}.log"));
                    let env: &[(&str, &str)] = if shared { &[] } else { &[("TESSERA_SECRET_KEY", SECRET_KEY)] };
                    let started = Server::try_start(&dir, &url, &log, env);
                    let _ = std::fs::remove_file(&log);
                    started
                })
            })
            .collect();
        let mut nodes = Vec::new();
        for (n, start) in starts.into_iter().enumerate() {
            match start.join().unwrap() {
                Ok(server) => nodes.push(server),
                Err(stderr) => panic!("round {round}: node {n} did not start (shared data dir: {shared}):\n{stderr}"),
            }
        }
        let first = jwks_kids(&nodes[0].base).await;
        assert_eq!(first.len(), 6, "round {round}: an active and a next key for each of three algorithms: {first:?}");
        for (n, node) in nodes.iter().enumerate().skip(1) {
            assert_eq!(jwks_kids(&node.base).await, first, "round {round}: node {n} publishes other keys");
        }
        for node in nodes {
            node.kill_9();
        }
    }
    eprintln!("cold start: {ROUNDS} rounds of {NODES} nodes, every node started and all published the same keys");
}
