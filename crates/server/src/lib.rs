//! The hallpass sidecar: config, the Envoy ext_authz v3 gRPC service, and the
//! admin endpoints.
//!
//! [`Sidecar::bind`] loads what it can (policy, trust bundles), binds both
//! listeners and returns; [`Sidecar::run`] serves until its shutdown future
//! resolves, then drains in-flight checks. Decisions are made by
//! [`Shared::decide`], a synchronous function of the `CheckRequest`, the
//! current compiled policy and the current trust bundles, so it can be tested
//! without a network. Anything missing (policy, bundle, attributes) is a deny:
//! hallpass fails closed, and `/readyz` says why it is not ready.

mod admin;
pub mod answer;
mod caller;
mod check;
pub mod config;
mod decide;
mod error;
mod listen;
mod panic_log;
mod reload;
mod trust;
mod workload_api;

pub use check::AuthzService;
pub use config::{ListenAddr, Settings, X509From};
pub use decide::{LoadedPolicy, Outcome, Shared};
pub use error::ServerError;
pub use listen::Sidecar;
pub use panic_log::log_panics;
pub use reload::declared_graph;
