//! XFCC parsing: bounded, and a value never escapes its element.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(elements) = hallpass_identity::parse_xfcc(text) {
        assert!(elements.len() <= 16);
        assert!(text.len() <= 64 * 1024);
        // Parsing is a function of the text: the same input, the same result.
        assert_eq!(hallpass_identity::parse_xfcc(text), Ok(elements));
    }
});
