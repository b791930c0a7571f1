//! Mounts across repositories: a blob stowage pushed to one repository of a
//! registry is mounted, not uploaded, when a later push sends it to another.

use crate::rig::registry::{AccessLine, TestRegistry, host_arch, write_app_on};
use crate::rig::*;

#[test]
fn a_second_repository_mounts_the_base_layer_pushed_to_the_first() {
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    // A local oci: base: no registry origin, so only the store's memory can name a repository.
    let mut base_tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let data = b"base layer bytes\n".repeat(1000);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    base_tar
        .append_data(&mut header, "etc/base-data", &data[..])
        .unwrap();
    let base = sb.join("base");
    let desc = write_oci_image(&base, host_arch(), &base_tar.into_inner().unwrap());
    write_oci_index(&base, std::slice::from_ref(&desc));
    let manifest: serde_json::Value =
        serde_json::from_slice(&Layout::open(&base).blob(desc["digest"].as_str().unwrap()))
            .unwrap();
    // As it appears in a query string.
    let base_layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .replace(':', "%3A");

    let spec = write_app_on(
        &sb.join("app"),
        &format!("oci:{}", base.display()),
        "unused",
    );
    for repository in ["mounts/first:1", "mounts/second:1"] {
        let out = sb
            .stowage()
            .args(["build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(reg.reference(repository))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out.stderr));
    }
    let log = reg.access_log();
    let to_second: Vec<&AccessLine> = log
        .iter()
        .filter(|l| l.uri.starts_with("/v2/mounts/second/blobs/uploads/"))
        .collect();
    assert!(
        to_second.iter().any(|l| l.method == "POST"
            && l.uri.contains(&format!("mount={base_layer}"))
            && l.uri.contains("from=mounts%2Ffirst")
            && l.status == 201),
        "the base layer mounted from mounts/first: {to_second:#?}"
    );
    assert!(
        !to_second
            .iter()
            .any(|l| l.method == "PUT" && l.uri.contains(&base_layer)),
        "the base layer was uploaded again: {to_second:#?}"
    );
}
