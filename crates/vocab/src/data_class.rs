//! Data classes: what kind of data a rule or destination serves, so that
//! an anomaly's severity can follow the data (issue 15 §2, design §5).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The class of data a rule's routes (or a destination) serve. A closed
/// set: `hallpass_call_path_anomalies_total` carries it as a label, so it is
/// bounded by construction (five values with [`DataClass::None`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// Protected health information: anomalies page.
    Phi,
    /// Billing and payment data.
    Billing,
    /// Operational data (health checks, metrics, config): anomalies warn.
    Operational,
    /// Public data.
    Public,
    /// Not declared: no rule class and no destination default (label `none`).
    #[default]
    None,
}

impl DataClass {
    /// The classes a policy can declare, in the order the docs list them.
    pub const DECLARABLE: [DataClass; 4] =
        [Self::Phi, Self::Billing, Self::Operational, Self::Public];

    /// Every label value, [`DataClass::None`] last.
    pub const ALL: [DataClass; 5] = [
        Self::Phi,
        Self::Billing,
        Self::Operational,
        Self::Public,
        Self::None,
    ];

    /// The word used in the policy file, the audit record and the
    /// `data_class` metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Phi => "phi",
            Self::Billing => "billing",
            Self::Operational => "operational",
            Self::Public => "public",
            Self::None => "none",
        }
    }

    /// The class a policy names with `word`; `None` for any other word
    /// (also for `none`, which is what leaving the key out means).
    pub fn named(word: &str) -> Option<Self> {
        Self::DECLARABLE.into_iter().find(|c| c.as_str() == word)
    }

    /// True when not declared (serde's `skip_serializing_if`).
    pub const fn is_undeclared(&self) -> bool {
        matches!(self, Self::None)
    }

    /// True when declared (anything but [`DataClass::None`]).
    pub const fn is_declared(self) -> bool {
        !matches!(self, Self::None)
    }
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declarable_class_round_trips_and_none_is_not_declarable() {
        for class in DataClass::DECLARABLE {
            assert_eq!(DataClass::named(class.as_str()), Some(class));
            assert!(class.is_declared());
        }
        assert_eq!(DataClass::named("none"), None);
        assert_eq!(DataClass::named("PHI"), None);
        assert!(!DataClass::None.is_declared());
        assert_eq!(DataClass::ALL.len(), 5);
        assert_eq!(DataClass::default(), DataClass::None);
    }
}
