//! docker-archive and oci-archive readers (and through them the OCI layout
//! resolver): any bytes, as a tar file or gzip-wrapped one, are read into
//! the store or refused with an error, never a panic, and whatever blob
//! lands in the store matches its digest.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stowage::transport::archive::{read_docker_archive, read_oci_archive};
use stowage::store::Store;

struct Scratch {
    dir: tempfile::TempDir,
    store: Store,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp folder");
        let store = Store::open(dir.path().join("store")).expect("a store");
        Scratch { dir, store }
    })
}

fuzz_target!(|data: &[u8]| {
    let scratch = scratch();
    let path = scratch.dir.path().join("input.tar");
    std::fs::write(&path, data).expect("write the input");
    if let Err(error) = read_docker_archive(&path, None, &scratch.store) {
        let _ = (error.to_string(), error.hint());
    }
    if let Err(error) = read_oci_archive(&path, None, &scratch.store, true) {
        let _ = (error.to_string(), error.hint());
    }
});
