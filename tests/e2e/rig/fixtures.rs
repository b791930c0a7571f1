//! What the tests build from: the sample app written in code, file trees and
//! their owners, and base images made by hand (no docker needed).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::readers::{gzip, sha256_digest, sha256_hex};

/// What the sample app prints when run with its default command.
pub const APP_OUTPUT: [&str; 3] = [
    "stowage-app: hello-from-env in /home/user/work as uid 1000",
    "workspace notes",
    "arg: greet",
];

const START_SH: &str = r#"#!/bin/sh
# The sample app's start script: runs on scratch with the busybox beside it.
echo "stowage-app: $GREETING in $(pwd) as uid $(/opt/app/bin/busybox id -u)"
/opt/app/bin/busybox cat /home/user/work/notes.txt
for a in "$@"; do echo "arg: $a"; done
"#;

/// The sample app's stowage.toml; `image` is the spec's default reference.
pub fn app_spec(image: &str) -> String {
    format!(
        r#"# The sample app of stowage's end-to-end tests.
base = "scratch"
image = "{image}"

[app]
library = {{ source = "library", target = "/opt/app" }}
workspace = {{ source = "workspace", target = "/home/user/work" }}
exclude = ["**/__pycache__", "*.pyc"]
entrypoint = ["/opt/app/start.sh"]
command = ["greet"]
ports = ["8888/tcp"]
workdir = "/home/user/work"
user = "1000:100"

# The start script's #!/bin/sh: busybox is a shell when called sh.
[[files]]
source = "library/bin/busybox"
target = "/bin/sh"
mode = "0755"

[env]
GREETING = "hello-from-env"
PATH = "/opt/app/bin:/bin"

[labels]
"org.opencontainers.image.source" = "https://example.org/stowage-e2e"
"#
    )
}

/// Gives the app of `spec` a label of its own, so its image ID is its own.
///
/// Tests run at once and share podman's and dockerd's image stores: every
/// test's sample app would otherwise have one image ID, and one test's
/// `rmi -f` would remove the image another is about to run.
pub fn label_uniquely(spec: &Path, label: &str) {
    let mut text = fs::read_to_string(spec).unwrap();
    assert!(
        text.trim_end().ends_with("stowage-e2e\""),
        "[labels] must end the spec"
    );
    text.push_str(&format!("\"org.stowage.test.image\" = \"{label}\"\n"));
    fs::write(spec, text).unwrap();
}

pub fn write_file(path: &Path, content: impl AsRef<[u8]>, mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The sample app, written in `root`: a library (start script, busybox,
/// a few files and some that `exclude` drops), a workspace, and a spec
/// whose `image` is `image`. Returns the spec's path.
pub fn write_app(root: &Path, image: &str) -> PathBuf {
    let lib = root.join("library");
    write_file(&lib.join("start.sh"), START_SH, 0o755);
    fs::create_dir_all(lib.join("bin")).unwrap();
    fs::copy("/bin/busybox", lib.join("bin/busybox")).unwrap_or_else(|e| {
        panic!("copy /bin/busybox (Debian's busybox-static; scripts/test.sh installs it): {e}")
    });
    set_mode(&lib.join("bin/busybox"), 0o755);
    symlink("busybox", lib.join("bin/sh")).unwrap();
    write_file(
        &lib.join("share/motd.txt"),
        "stowage sample library\n",
        0o644,
    );
    write_file(&lib.join("pkg/__init__.py"), "", 0o644);
    write_file(
        &lib.join("pkg/__pycache__/__init__.cpython-312.pyc"),
        "bytecode",
        0o644,
    );
    write_file(&lib.join("mod.pyc"), "bytecode", 0o644);
    set_mode(&lib, 0o755);

    let ws = root.join("workspace");
    write_file(&ws.join("notes.txt"), "workspace notes\n", 0o644);
    write_file(&ws.join("data/numbers.csv"), "n\n1\n2\n3\n", 0o644);
    set_mode(&ws, 0o755);

    let spec = root.join("stowage.toml");
    fs::write(&spec, app_spec(image)).unwrap();
    spec
}

/// Sets the mtime (and atime) of every entry under `root`, symlinks
/// included, with `touch -h -d`.
pub fn touch_tree(root: &Path, date: &str) {
    let mut paths = Vec::new();
    walk(root, &mut |p| paths.push(p.to_path_buf()));
    paths.push(root.to_path_buf());
    for chunk in paths.chunks(200) {
        let status = std::process::Command::new("touch")
            .args(["-h", "-d", date])
            .args(chunk)
            .status()
            .expect("run touch");
        assert!(status.success(), "touch -d {date} failed");
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        f(&p);
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            walk(&p, f);
        }
    }
}

/// One entry of a file tree, as compared between the source and an unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, sha256: String },
    Symlink { target: OsString },
}

/// Every entry under `root` (not `root` itself), keyed by the path bytes
/// relative to `root`, skipping paths for which `skip` is true.
pub fn read_tree(root: &Path, skip: &dyn Fn(&[u8]) -> bool) -> BTreeMap<Vec<u8>, Node> {
    let mut map = BTreeMap::new();
    let mut paths = Vec::new();
    walk(root, &mut |p| paths.push(p.to_path_buf()));
    for p in paths {
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        if skip(&rel) {
            continue;
        }
        let meta = fs::symlink_metadata(&p).unwrap();
        let mode = meta.mode() & 0o7777;
        let node = if meta.file_type().is_symlink() {
            Node::Symlink {
                target: fs::read_link(&p).unwrap().into_os_string(),
            }
        } else if meta.is_dir() {
            Node::Dir { mode }
        } else {
            Node::File {
                mode,
                sha256: sha256_hex(&fs::read(&p).unwrap()),
            }
        };
        map.insert(rel, node);
    }
    map
}

/// The (uid, gid) of `root` (key: empty) and of every entry under it,
/// keyed by the path bytes relative to `root`.
pub fn owners_under(root: &Path) -> BTreeMap<Vec<u8>, (u32, u32)> {
    let mut map = BTreeMap::new();
    let mut paths = vec![root.to_path_buf()];
    walk(root, &mut |p| paths.push(p.to_path_buf()));
    for p in paths {
        let meta = fs::symlink_metadata(&p).unwrap();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        map.insert(rel, (meta.uid(), meta.gid()));
    }
    map
}

pub fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A tar of `files` (path, content, mode), owned by root, mtime 0, with the
/// folders named by `dirs`.
pub fn make_layer(dirs: &[&str], files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for dir in dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        b.append_data(&mut h, format!("{dir}/"), std::io::empty())
            .unwrap();
    }
    for (path, content, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(*mode);
        h.set_size(content.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, path, *content).unwrap();
    }
    b.into_inner().unwrap()
}

/// A small busybox base layer: /bin/busybox, /bin/sh (a copy), /etc/base.
pub fn busybox_layer(marker: &str) -> Vec<u8> {
    let busybox = fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    make_layer(
        &["bin", "etc"],
        &[
            ("bin/busybox", &busybox, 0o755),
            ("bin/sh", &busybox, 0o755),
            ("etc/base", marker.as_bytes(), 0o644),
        ],
    )
}

/// A minimal image config for `arch` with the given layer tars.
pub fn base_config(arch: &str, layer_tars: &[&[u8]]) -> Value {
    let diff_ids: Vec<String> = layer_tars.iter().map(|t| sha256_digest(t)).collect();
    json!({
        "architecture": arch,
        "os": "linux",
        "created": "2020-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/bin:/bin", format!("BASE_ARCH={arch}")],
            "Cmd": ["/bin/sh", "-c", "echo base"],
            "Healthcheck": {"Test": ["CMD", "/bin/true"], "Interval": 5_000_000_000u64},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layer_tars.iter().map(|_| json!({"created": "2020-01-01T00:00:00Z", "created_by": "hand-made"})).collect::<Vec<_>>(),
    })
}

/// Writes `bytes` as a blob of the layout at `dir`; returns a descriptor.
pub fn write_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let hex = sha256_hex(bytes);
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(&hex), bytes).unwrap();
    json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Writes one single-layer image for `arch` into the layout at `dir` and
/// returns its manifest descriptor (with a platform), without touching
/// index.json.
pub fn write_oci_image(dir: &Path, arch: &str, layer_tar: &[u8]) -> Value {
    let layer = write_blob(dir, OCI_LAYER_GZIP, &gzip(layer_tar));
    let config = base_config(arch, &[layer_tar]);
    let config = write_blob(dir, OCI_CONFIG, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    });
    let mut desc = write_blob(dir, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    desc["platform"] = json!({"architecture": arch, "os": "linux"});
    desc
}

/// Writes `oci-layout` and an `index.json` listing `manifests`.
pub fn write_oci_index(dir: &Path, manifests: &[Value]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A classic `docker save` tarball of one busybox image, written by hand:
/// `manifest.json` and the config first, then `<id>/layer.tar` — so a
/// truncated copy still has a readable manifest and loses layer bytes.
pub fn docker_save_tar(repo_tag: &str) -> Vec<u8> {
    let layer = busybox_layer("docker-save");
    let config = serde_json::to_vec(&base_config("amd64", &[&layer])).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let layer_dir = sha256_hex(&layer);
    let layer_name = format!("{layer_dir}/layer.tar");
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": [layer_name],
    }]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in [
        ("manifest.json", &manifest),
        (config_name.as_str(), &config),
        (layer_name.as_str(), &layer),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, content.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A two-platform (linux/amd64, linux/arm64) OCI layout at `dir`, each
/// image one small layer. `nested`: index.json holds one descriptor, tagged
/// `multi`, of an image index listing both (what skopeo and buildx write);
/// else index.json lists both manifests itself, untagged. Returns the base
/// reference and the amd64 and arm64 layer tars.
pub fn write_multi_platform_base(dir: &Path, nested: bool) -> (String, Vec<u8>, Vec<u8>) {
    let amd = make_layer(&["etc"], &[("etc/arch", b"amd64\n", 0o644)]);
    let arm = make_layer(&["etc"], &[("etc/arch", b"arm64\n", 0o644)]);
    let amd_desc = write_oci_image(dir, "amd64", &amd);
    let arm_desc = write_oci_image(dir, "arm64", &arm);
    if nested {
        let index =
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd_desc, arm_desc]});
        let mut desc = write_blob(dir, OCI_INDEX, &serde_json::to_vec(&index).unwrap());
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": "multi"});
        write_oci_index(dir, &[desc]);
        (format!("oci:{}:multi", dir.display()), amd, arm)
    } else {
        write_oci_index(dir, &[amd_desc, arm_desc]);
        (format!("oci:{}", dir.display()), amd, arm)
    }
}

/// A static x86-64 ELF that exits 0: a command the start check can follow on scratch.
pub fn exit0_elf() -> Vec<u8> {
    let code = [0xB8, 60, 0, 0, 0, 0x31, 0xFF, 0x0F, 0x05]; // mov eax, 60; xor edi, edi; syscall
    let base: u64 = 0x40_0000;
    let start: u64 = 64 + 56;
    let end = start + code.len() as u64;
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.extend_from_slice(&[0; 9]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3Eu16.to_le_bytes()); // x86-64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(base + start).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers at 64
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // read + execute
    for word in [0, base, base, end, end, 0x1000] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(&code);
    elf
}
