//! stowage.toml: any text is a spec or an error with a position, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("/nonexistent/stowage-fuzz/stowage.toml");
    if let Err(error) = stowage::spec::parse_spec(text, path) {
        let _ = error.to_string();
        let _ = error.hint();
    }
});
