//! A test double of the SPIRE agent's SPIFFE Workload API, for hallpass's tests.
//!
//! A real SPIRE agent serves the Workload API (gRPC service `SpiffeWorkloadAPI`
//! from `workload.proto`) on a Unix socket and streams the trust bundles a
//! workload should trust, re-sending the *whole* set every time it changes.
//! [`FakeWorkloadApi`] serves the same service, compiled from the same proto
//! that the `spiffe` client crate ships, on a Unix socket of the test's choosing,
//! so hallpass's bundle watchers can be tested end to end with the real
//! `spiffe::WorkloadApiClient` and no SPIRE binary.
//!
//! What it does, and how that matches the real agent:
//!
//! - `FetchX509Bundles` and `FetchJWTBundles` stream the bundle set the test
//!   last gave to [`FakeWorkloadApi::set_x509_bundles`] or
//!   [`FakeWorkloadApi::set_jwt_bundles`]. Each message carries the complete
//!   set, keyed by trust domain ID (`spiffe://<name>`), exactly as SPIRE sends
//!   it; a trust domain left out of a set is gone.
//! - Every call must carry the `workload.spiffe.io: true` metadata header, or it
//!   fails with `INVALID_ARGUMENT` ("security header missing from request"),
//!   like SPIRE's own check.
//! - [`FakeWorkloadApi::disconnect_all`] ends every open stream with
//!   `UNAVAILABLE`, to exercise a client's reconnect loop, and the counters
//!   ([`FakeWorkloadApi::x509_streams_opened`],
//!   [`FakeWorkloadApi::jwt_streams_opened`]) show how often clients came back.
//! - The SVID RPCs (`FetchX509SVID`, `FetchJWTSVID`, `ValidateJWTSVID`) answer
//!   `UNIMPLEMENTED`: hallpass only consumes bundles.
//!
//! ```no_run
//! # async fn demo(ca_der: Vec<u8>) -> std::io::Result<()> {
//! use hallpass_workload_api_fake::FakeWorkloadApi;
//!
//! let dir = std::env::temp_dir().join("fake-agent-demo");
//! std::fs::create_dir_all(&dir)?;
//! let agent = FakeWorkloadApi::start(&dir.join("agent.sock"))?;
//! agent.set_x509_bundles(vec![("example.org".to_owned(), vec![ca_der])]);
//! // spiffe::WorkloadApiClient::connect_to(agent.endpoint()) now streams it.
//! agent.stop();
//! # Ok(())
//! # }
//! ```

mod fake;
mod service;

pub mod pb {
    //! Message and server types generated from the vendored `workload.proto`.
    //!
    //! Exposed so that a test can speak raw gRPC to the fake, for example to
    //! send a request without the security header.
    #![allow(missing_docs, missing_debug_implementations, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

pub use fake::FakeWorkloadApi;
pub use service::{SECURITY_HEADER, SECURITY_HEADER_MISSING};
