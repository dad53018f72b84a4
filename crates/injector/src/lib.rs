//! hallpass sidecar injection for Kubernetes.
//!
//! A mutating admission webhook (AdmissionReview v1 over HTTPS) that adds
//! hallpass to the pods that ask for it, as a native sidecar (an init
//! container with `restartPolicy: Always`), and in standalone mode an Envoy
//! that terminates mTLS with the pod's SPIFFE SVID and asks hallpass about
//! every request.
//!
//! - [`inject::decide`]: the whole decision for one pod, a pure function of
//!   the [`InjectorConfig`], the webhook [`Scope`], the namespace and the
//!   pod's JSON. It skips (not opted in, opted out where allowed, its own
//!   earlier injection), rejects (annotations the pod may not use, ways into
//!   the sidecar, forged injection, port clashes), or returns an add-only
//!   RFC 6902 patch.
//! - [`posture`]: who may change a pod's posture (the chart's `overrides`)
//!   and what no container may do to the sidecar; [`owned`]: the names the
//!   injector owns and how it recognises its own injection; [`guard`]: the
//!   validating webhook for CREATE and UPDATE.
//! - [`review::review`]: an AdmissionReview body in, the AdmissionReview
//!   answer out (kube-core types).
//! - [`envoy::bootstrap`]: the standalone Envoy's bootstrap (SDS from the
//!   SPIRE agent, ext_authz over a Unix socket).
//! - [`Injector`]: the HTTPS server (axum on hyper's HTTP/1.1 over rustls,
//!   every client resource bounded by [`Limits`]) with a certificate that is
//!   re-read when cert-manager rotates it ([`tls::ReloadingCert`]).
//!
//! The annotations are listed in [`annotations`]; the Helm chart in
//! `charts/hallpass` renders the [`InjectorConfig`] and the
//! MutatingWebhookConfiguration; `docs/kubernetes.md` is the operator's guide.

pub mod annotations;
pub mod config;
pub mod envoy;
mod error;
pub mod guard;
pub mod inject;
pub mod owned;
pub mod posture;
pub mod review;
mod server;
pub mod tls;

pub use config::{AppProtocol, InjectorConfig, Limits, Mode, Overrides};
pub use error::{InjectorError, Problem};
pub use inject::{Decision, Injection, Scope, Skip};
pub use posture::Override;
pub use server::{Injector, Metrics};
