//! The authz listener's sockets: `TCP_NODELAY` on every accepted connection.
//!
//! A deny is written in more than one piece; with Nagle on, each piece after
//! the first waits for the client's delayed ACK (about 40 ms on Linux), so a
//! client that sends one check at a time got a denied answer every ~41 ms.
//! This is a correctness test of that stall, not a benchmark: the bound is
//! generous (50 checks in under a second; the stall made it about 2 s).

use crate::common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sequential_denied_checks_over_tcp_take_well_under_a_second() {
    let (dir, ca) = clinical_dir();
    let mut running =
        Running::start_ready(config(dir.path(), &format!("workload:\n  id: {LAB}\n"))).await;
    let billing = ca.issue(BILLING).unwrap();
    // One check first: the connection is up and the credential is cached.
    let denied = || check_request(Some(&billing), "", "", "GET", "/patients/1/results");
    assert_eq!(running.check(denied()).await.0, 403);
    let started = Instant::now();
    for _ in 0..50 {
        let (status, reason, _) = running.check(denied()).await;
        assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "50 sequential denied checks took {took:?}: Nagle's algorithm is on for accepted sockets"
    );
    running.stop().await;
}
