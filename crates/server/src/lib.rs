//! The hallpass sidecar: config, the Envoy ext_authz v3 gRPC service, and the
//! admin endpoints.
//!
//! One check's path through the crate, file by file:
//!
//! 1. `listen.rs`: [`Sidecar::bind`] loads what it can (policy, trust
//!    bundles) and binds both listeners; [`Sidecar::run`] serves until its
//!    shutdown future resolves, then drains in-flight checks.
//! 2. `check.rs`: [`AuthzService`] takes one gRPC `Check` through the next
//!    three steps, each guarded against a panic.
//!    A check that must verify a credential (not all of its credentials in
//!    the cache) is decided on the verification lane (`verify_lane.rs`: one
//!    thread at a lower CPU priority, a bounded queue), so known callers
//!    never wait behind verifications of certificates never seen before.
//! 3. `decide.rs` (with `caller.rs` for the identity): [`Shared::decide`], a
//!    synchronous function of the `CheckRequest`, the current compiled
//!    policy and the current trust bundles, returns a [`Decided`]: the
//!    [`Outcome`] and the request facts the record step needs.
//! 4. `answer.rs`: the `CheckResponse` for an [`Outcome`].
//! 5. `record.rs`: [`Shared::record`] counts the decision and queues its
//!    event for telemetry; it reads nothing but the [`Decided`].
//!
//! Around that path: `shared.rs` (the state every step reads), `reload.rs`
//! (policy and bundle files), `trust.rs` and `workload_api.rs` (trust
//! bundles), `conn_limit.rs` (the cap on authz connections), `admin.rs`
//! (the admin endpoints), `config.rs`. Anything missing
//! (policy, bundle, attributes) is a deny: hallpass fails closed, and
//! `/readyz` says why it is not ready.

mod admin;
pub mod answer;
mod break_glass;
mod caller;
mod check;
pub mod config;
mod conn_limit;
mod decide;
mod error;
mod listen;
mod panic_log;
mod record;
mod reload;
mod replay;
mod shared;
mod trust;
mod verify_lane;
mod workload_api;

pub use check::AuthzService;
pub use config::{ListenAddr, Settings, X509From};
pub use decide::{CounterSlot, Decided, Outcome, RequestFacts};
pub use error::ServerError;
pub use listen::Sidecar;
pub use panic_log::log_panics;
pub use shared::{LoadedPolicy, Shared};
