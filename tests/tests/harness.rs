//! The harness's own guarantees that the other end-to-end tests lean on.

use hallpass_e2e::free_ports;

#[test]
fn reserved_ports_are_distinct_and_below_the_ephemeral_range() {
    let ephemeral_lo: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .expect("Linux exposes the ephemeral port range")
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("a port number");
    // The second call opens new lock files for the ports the first holds, so
    // it only passes if a held lock keeps a port out, as it does across
    // processes.
    let mut all = free_ports(40).unwrap();
    all.extend(free_ports(40).unwrap());
    assert_eq!(all.len(), 80);
    let distinct: std::collections::BTreeSet<u16> = all.iter().copied().collect();
    assert_eq!(distinct.len(), 80, "a port was handed out twice: {all:?}");
    assert!(
        all.iter().all(|p| *p < ephemeral_lo && *p >= 1024),
        "{all:?}"
    );
}
