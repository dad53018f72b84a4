//! hallpass vocabulary: the words every crate speaks, defined once.
//!
//! A deny reason, a decision label, a mode, an HTTP method, a credential
//! kind, an anomaly kind and the cause of an ambiguous path each cross
//! crate boundaries: the policy decides with them, the server answers and
//! counts with them, telemetry labels and audits with them. Here each is an
//! enum with one `as_str` (or `code`), so renaming a value is a compile
//! error everywhere rather than a metric that silently stops counting. The
//! declared call-graph edge lives here for the same reason: the policy
//! produces it, telemetry serves it, the offline tools read it.
//!
//! This crate has no logic beyond those mappings and depends on serde alone,
//! so telemetry can speak it without linking the policy compiler.

mod anomaly;
mod credential;
mod data_class;
mod decision;
mod declared;
mod method;
mod path;

pub use anomaly::{Anomalies, AnomalyKind};
pub use credential::{CredentialKind, Credentials};
pub use data_class::DataClass;
pub use decision::{BREAK_GLASS_REASON, DecisionLabel, DenyReason, Mode, OK_REASON, reason_label};
pub use declared::{DeclaredEdge, DeclaredGraph};
pub use method::Method;
pub use path::PathIssue;
