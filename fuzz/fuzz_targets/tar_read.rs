//! stowage's tar reader (base layers, image archives): any bytes are read
//! entry by entry or refused with an error, never a panic, and an entry's
//! data that reads without error is exactly the size its header gives.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use stowage::tar_read::TarReader;

/// At most this much data is read per input: a sparse header can claim
/// terabytes of holes in a few hundred bytes.
const BUDGET: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let mut reader = TarReader::new(data);
    let mut budget = BUDGET;
    while let Ok(Some(header)) = reader.next_entry() {
        let want = header.data_size().min(budget);
        match io::copy(&mut (&mut reader).take(want), &mut io::sink()) {
            Ok(read) => assert_eq!(read, want, "{header:?}"),
            Err(error) => {
                let _ = error.to_string();
                break;
            }
        }
        budget -= want;
        if budget == 0 {
            break;
        }
    }
});
