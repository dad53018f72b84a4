//! SPIFFE ID parsing: whatever is accepted is canonical and safe to match.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = hallpass_identity::parse_spiffe_id_strict(text) {
        // Accepted means: canonical spelling, a path, and no segment that two
        // parsers could read differently.
        assert_eq!(id.to_string(), text);
        assert!(text.starts_with("spiffe://"));
        assert!(!id.path().is_empty());
        let td = id.trust_domain_name();
        assert!(td.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)));
        for segment in id.path().split('/').skip(1) {
            assert!(!segment.is_empty() && segment != "." && segment != "..");
            assert!(!segment.contains(['%', '?', '#']));
        }
    }
});
