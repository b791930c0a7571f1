//! Image references and transports: any text either parses or is an error,
//! and what parses prints back to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stowage::reference::{ImageRef, parse_location};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = ImageRef::parse(text) {
        let printed = reference.to_string();
        let again = ImageRef::parse(&printed).expect("a printed reference parses");
        assert_eq!(again, reference, "{text:?} printed as {printed:?}");
        let _ = reference.familiar();
    }
    if let Ok(transport) = parse_location(text) {
        let printed = transport.to_string();
        let _ = parse_location(&printed);
    }
});
