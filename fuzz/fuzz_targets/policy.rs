//! Policy and config files: any text is a clear error or a usable result,
//! never a panic; and a policy valid as a whole is valid for each sidecar.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A destination of the seed policies, so the one-destination path (the
/// entries of other destinations cut out of the text) is exercised.
const DESTINATION: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let whole = hallpass_policy::CompiledPolicy::from_yaml(text);
    let Ok(only) = hallpass_identity::parse_spiffe_id_strict(DESTINATION) else {
        return;
    };
    let one = hallpass_policy::CompiledPolicy::from_yaml_for(text, Some(&only));
    // A policy `hallpass policy check` accepts is accepted by every sidecar.
    // (Not the reverse: a sidecar cuts the other destinations' entries out
    // unchecked, by design, so an error there is `policy check`'s to find.)
    if let Err(e) = &one {
        assert!(
            whole.is_err(),
            "the whole policy is valid, one destination's cut is not: {e}"
        );
    }
    if let (Ok(whole), Ok(one)) = (&whole, &one) {
        assert!(one.rule_count() <= whole.rule_count());
    }
    // The same text as the sidecar's config file: a result or an error,
    // with no environment to lean on.
    let _ = hallpass_server::Settings::from_yaml(text, std::iter::empty());
});
