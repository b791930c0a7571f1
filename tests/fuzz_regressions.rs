//! The fuzz targets' checks, replayed in the normal test run over
//! `fuzz/seeds/` and `fuzz/regressions/` (every input that ever crashed a
//! target), so CI keeps them fixed without cargo-fuzz. The checks mirror
//! `fuzz/fuzz_targets/*.rs`.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use stowage::reference::{ImageRef, parse_location};
use stowage::registry::auth::{Challenge, parse_challenge};
use stowage::store::Store;
use stowage::tar_read::TarReader;
use stowage::transport::archive::{read_docker_archive, read_oci_archive};

/// Every input kept for `target`, seeds and regressions (hidden files skipped).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut found = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            let bytes = fs::read(&path).unwrap();
            found.push((path, bytes));
        }
    }
    found.sort();
    assert!(!found.is_empty(), "no inputs kept for {target}");
    found
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

#[test]
fn reference_inputs() {
    for (path, bytes) in inputs("reference") {
        let Some(text) = text(&bytes) else { continue };
        if let Ok(reference) = ImageRef::parse(text) {
            let printed = reference.to_string();
            let again = ImageRef::parse(&printed)
                .unwrap_or_else(|e| panic!("{}: {printed:?} does not parse: {e}", path.display()));
            assert_eq!(again, reference, "{}", path.display());
        }
        if let Ok(transport) = parse_location(text) {
            let _ = parse_location(&transport.to_string());
        }
    }
}

#[test]
fn spec_inputs() {
    let spec_path = Path::new("/nonexistent/stowage-fuzz/stowage.toml");
    for (_, bytes) in inputs("spec") {
        let Some(text) = text(&bytes) else { continue };
        if let Err(error) = stowage::spec::parse_spec(text, spec_path) {
            let _ = (error.to_string(), error.hint());
        }
    }
}

#[test]
fn www_authenticate_inputs() {
    for (path, bytes) in inputs("www_authenticate") {
        let Some(text) = text(&bytes) else { continue };
        if let Ok(Challenge::Bearer { realm, .. }) = parse_challenge(text) {
            assert!(realm.starts_with("http"), "{}", path.display());
        }
    }
}

#[test]
fn archive_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut read = 0;
    for (path, bytes) in inputs("archive") {
        let file = dir.path().join("input.tar");
        fs::write(&file, &bytes).unwrap();
        let docker = read_docker_archive(&file, None, &store);
        let oci = read_oci_archive(&file, None, &store, true);
        if let Err(error) = &docker {
            let _ = (error.to_string(), error.hint());
        }
        if let Err(error) = &oci {
            let _ = (error.to_string(), error.hint());
        }
        let seed = path.to_string_lossy().contains("/seeds/");
        if seed && (docker.is_ok() || oci.is_ok()) {
            read += 1;
        }
    }
    assert!(read >= 3, "the seed archives are readable ({read})");
}

#[test]
fn tar_read_inputs() {
    for (path, bytes) in inputs("tar_read") {
        let mut reader = TarReader::new(&bytes[..]);
        let mut budget: u64 = 64 << 20;
        while let Ok(Some(header)) = reader.next_entry() {
            let want = header.data_size().min(budget);
            match io::copy(&mut (&mut reader).take(want), &mut io::sink()) {
                Ok(read) => assert_eq!(read, want, "{}: {header:?}", path.display()),
                Err(_) => break,
            }
            budget -= want;
            if budget == 0 {
                break;
            }
        }
    }
}
