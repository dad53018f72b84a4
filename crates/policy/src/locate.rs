//! Where things are in a policy file. The machinery (located YAML tree,
//! key paths, shape check) is shared with every other file hallpass reads
//! and lives in `hallpass-diagnostics`; this module names what the policy
//! code uses of it.

pub use hallpass_diagnostics::path::{child_path, item_path};
pub use hallpass_diagnostics::yaml::{Field, Shape, check_shape, parse};
pub use hallpass_diagnostics::{Location, LocationIndex};
