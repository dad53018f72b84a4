//! Write a large generated policy to stdout (see `policy_gen`):
//!
//! ```text
//! hallpass-gen-policy DESTINATIONS RULES_PER_DESTINATION [CALLEE_RULES]
//! ```
//!
//! `hallpass-gen-policy 5000 10` is the mesh-wide file of the mesh-scale
//! benchmark; `hallpass-gen-policy 1 10000` one destination of 10,000 rules.

use std::io::Write as _;

use anyhow::{Context, bail};
use hallpass_e2e::policy_gen::{PolicySpec, generate};

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().with_context(|| format!("not a number: {a}")))
        .collect::<Result<_, _>>()?;
    let spec = match args.as_slice() {
        [destinations, rules] => PolicySpec::mesh(*destinations, *rules),
        [destinations, rules, callee] => PolicySpec {
            callee_rules: *callee,
            ..PolicySpec::mesh(*destinations, *rules)
        },
        _ => bail!("usage: hallpass-gen-policy DESTINATIONS RULES_PER_DESTINATION [CALLEE_RULES]"),
    };
    std::io::stdout()
        .lock()
        .write_all(generate(&spec).as_bytes())?;
    Ok(())
}
