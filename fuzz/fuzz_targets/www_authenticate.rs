//! WWW-Authenticate headers: any text is a challenge or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stowage::registry::auth::{Challenge, parse_challenge};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_challenge(text) {
        Ok(Challenge::Bearer { realm, .. }) => {
            assert!(realm.starts_with("https://") || realm.starts_with("http://"));
        }
        Ok(Challenge::Basic) => {}
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
