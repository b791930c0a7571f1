//! Tars that Go's `archive/tar` reads and the `tar` crate did not: stowage's reader against Go's own reader (`gotar/main.go`) over Go's test archives and generated ones, and such tars as base layers the start check reads through.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::json;
use sha2::{Digest, Sha256};
use stowage::tar_read::TarReader;

use crate::rig::*;

/// Both listings read at most this much of an entry's data (Go's
/// gnu-sparse-big.tar is 60 GB of holes).
const DATA_LIMIT: u64 = 16 << 20;

/// Go's reader as a command, built once per run; None (outside CI) without `go`.
fn go_lister() -> Option<&'static Path> {
    static LISTER: OnceLock<Option<PathBuf>> = OnceLock::new();
    LISTER
        .get_or_init(|| {
            if !require_tool("go") {
                return None;
            }
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gotar");
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/gotar/main.go");
            let output = Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg(&source)
                .current_dir(env!("CARGO_TARGET_TMPDIR"))
                // Its own caches: CI's environment may have no HOME for go's defaults.
                .env(
                    "GOCACHE",
                    Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-cache"),
                )
                .env(
                    "GOPATH",
                    Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-path"),
                )
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "go build: {}",
                show(&output.stderr)
            );
            Some(out)
        })
        .as_deref()
}

/// How Go's reader lists `tar` (see gotar/main.go); an error's message is cut to `error`.
fn go_listing(lister: &Path, tar: &[u8]) -> Vec<String> {
    let mut child = Command::new(lister)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let tar = tar.to_vec();
    let writer = std::thread::spawn(move || {
        // Go stops reading at an error: the rest of the tar is not wanted.
        let _ = stdin.write_all(&tar);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| match line.starts_with("error") {
            true => "error".to_string(),
            false => line.to_string(),
        })
        .collect()
}

/// How stowage's reader lists `tar`, in gotar's format.
fn stowage_listing(tar: &[u8]) -> Vec<String> {
    let mut reader = TarReader::new(tar);
    let mut lines = Vec::new();
    loop {
        let header = match reader.next_entry() {
            Ok(Some(header)) => header,
            Ok(None) => break lines.push("end".into()),
            Err(_) => break lines.push("error".into()),
        };
        let mut hash = Sha256::new();
        let mut data = Vec::new();
        if (&mut reader)
            .take(DATA_LIMIT)
            .read_to_end(&mut data)
            .is_err()
        {
            break lines.push("error".into());
        }
        hash.update(&data);
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        lines.push(format!(
            "entry {} {} {} {} {} {} {} {} {}",
            hex(&header.name),
            hex(&header.link_name),
            header.type_flag,
            header.size,
            header.mode,
            header.uid,
            header.gid,
            data.len(),
            hex(&hash.finalize()),
        ));
    }
    lines
}

fn assert_reads_as_go_does(lister: &Path, name: &str, tar: &[u8]) -> Vec<String> {
    let go = go_listing(lister, tar);
    assert!(!go.is_empty(), "{name}: Go's reader printed nothing");
    assert_eq!(
        stowage_listing(tar),
        go,
        "{name}: stowage's reading differs from Go's"
    );
    go
}

// --- Writing the tars Go reads and the tar crate did not --------------------

/// A GNU header block; `fill` sets more fields before the checksum.
fn header(name: &str, type_flag: u8, size: usize, fill: impl FnOnce(&mut [u8; 512])) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    block[100..107].copy_from_slice(b"0000755");
    block[108..115].copy_from_slice(b"0000000");
    block[116..123].copy_from_slice(b"0000000");
    block[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    block[136..147].copy_from_slice(b"00000000000");
    block[156] = type_flag;
    block[257..265].copy_from_slice(b"ustar  \0");
    fill(&mut block);
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    block
}

/// Appends `block` and `data`, padded to a whole block.
fn put(tar: &mut Vec<u8>, block: [u8; 512], data: &[u8]) {
    tar.extend_from_slice(&block);
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

/// Appends a PAX header entry of `records`, as the tar crate writes one.
fn put_pax(tar: &mut Vec<u8>, records: &[(&str, String)]) {
    let mut builder = tar::Builder::new(Vec::new());
    let records = records.iter().map(|(k, v)| (*k, v.as_bytes()));
    builder.append_pax_extensions(records).unwrap();
    tar.extend_from_slice(builder.get_ref());
}

fn octal12(value: usize) -> [u8; 12] {
    let mut field = [0u8; 12];
    field[..11].copy_from_slice(format!("{value:011o}").as_bytes());
    field
}

fn busybox() -> Vec<u8> {
    fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)")
}

/// The data fragments (offset, length) of `content` once every run of at
/// least 4 zero bytes is a hole: they start and end at any byte, and holes
/// fall inside the ELF header; a zero-length fragment at the end, as GNU tar writes.
fn fragments_of(content: &[u8]) -> Vec<(usize, usize)> {
    let mut fragments = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < content.len() {
        let run = content[i..].iter().take_while(|b| **b == 0).count();
        if run >= 4 {
            if i > start {
                fragments.push((start, i - start));
            }
            start = i + run;
            i += run;
        } else {
            i += run.max(1);
        }
    }
    if start < content.len() {
        fragments.push((start, content.len() - start));
    }
    fragments.push((content.len(), 0));
    fragments
}

/// The sparse layouts Go reads.
#[derive(Clone, Copy, Debug)]
enum Sparse {
    OldGnu,
    Pax00,
    Pax01,
    Pax10,
}

/// Appends `content` at `name` as a sparse file in `layout`.
fn put_sparse(tar: &mut Vec<u8>, name: &str, content: &[u8], layout: Sparse) {
    let fragments = fragments_of(content);
    let mut stored: Vec<u8> = fragments
        .iter()
        .flat_map(|(o, l)| &content[*o..o + l])
        .copied()
        .collect();
    let size = content.len().to_string();
    let numbers = || {
        fragments
            .iter()
            .flat_map(|(o, l)| [o.to_string(), l.to_string()])
    };
    let records = match layout {
        Sparse::OldGnu => return put_old_gnu_sparse(tar, name, content.len(), &fragments, &stored),
        Sparse::Pax00 => {
            let mut records = vec![
                ("GNU.sparse.size", size),
                ("GNU.sparse.numblocks", fragments.len().to_string()),
            ];
            for (offset, length) in &fragments {
                records.push(("GNU.sparse.offset", offset.to_string()));
                records.push(("GNU.sparse.numbytes", length.to_string()));
            }
            records.push(("path", name.to_string()));
            records
        }
        Sparse::Pax01 => vec![
            ("GNU.sparse.size", size),
            ("GNU.sparse.numblocks", fragments.len().to_string()),
            ("GNU.sparse.map", numbers().collect::<Vec<_>>().join(",")),
            ("GNU.sparse.name", name.to_string()),
        ],
        Sparse::Pax10 => {
            let mut map = format!("{}\n", fragments.len());
            for number in numbers() {
                map.push_str(&number);
                map.push('\n');
            }
            let mut data = map.into_bytes();
            data.resize(data.len().div_ceil(512) * 512, 0);
            data.append(&mut stored);
            stored = data;
            vec![
                ("GNU.sparse.major", "1".to_string()),
                ("GNU.sparse.minor", "0".to_string()),
                ("GNU.sparse.realsize", size),
                ("GNU.sparse.name", name.to_string()),
            ]
        }
    };
    put_pax(tar, &records);
    put(
        tar,
        header("GNUSparseFile.0/sparse", b'0', stored.len(), |_| {}),
        &stored,
    );
}

/// An old GNU `S` header: four map entries in it, 21 in each extension block.
fn put_old_gnu_sparse(
    tar: &mut Vec<u8>,
    name: &str,
    size: usize,
    fragments: &[(usize, usize)],
    stored: &[u8],
) {
    let (first, rest) = fragments.split_at(fragments.len().min(4));
    tar.extend_from_slice(&header(name, b'S', stored.len(), |b| {
        for (i, (offset, length)) in first.iter().enumerate() {
            b[386 + i * 24..398 + i * 24].copy_from_slice(&octal12(*offset));
            b[398 + i * 24..410 + i * 24].copy_from_slice(&octal12(*length));
        }
        b[482] = u8::from(!rest.is_empty());
        b[483..495].copy_from_slice(&octal12(size));
    }));
    let chunks: Vec<_> = rest.chunks(21).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        let mut block = [0u8; 512];
        for (i, (offset, length)) in chunk.iter().enumerate() {
            block[i * 24..i * 24 + 12].copy_from_slice(&octal12(*offset));
            block[i * 24 + 12..i * 24 + 24].copy_from_slice(&octal12(*length));
        }
        block[504] = u8::from(n + 1 < chunks.len());
        tar.extend_from_slice(&block);
    }
    tar.extend_from_slice(stored);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

/// A layer: `bin/` with busybox as `bin/sh`, an `app/` folder, then `extra` appended.
fn layer(extra: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let busybox = busybox();
    let mut tar = Vec::new();
    put(&mut tar, header("bin/", b'5', 0, |_| {}), b"");
    put(
        &mut tar,
        header("bin/sh", b'0', busybox.len(), |_| {}),
        &busybox,
    );
    put(&mut tar, header("app/", b'5', 0, |_| {}), b"");
    extra(&mut tar);
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// A member named by two PAX headers (the first's path a decoy), one named
/// by two GNU long names, and a symlink whose target two GNU long links
/// give: Go takes the last of each.
fn twice_named(tar: &mut Vec<u8>, content: &[u8]) {
    for path in ["app/decoy-pax", "app/pax/busybox-pax"] {
        put_pax(tar, &[("path", path.into()), ("mtime", "1.5".into())]);
    }
    put(
        tar,
        header("short-name", b'0', content.len(), |_| {}),
        content,
    );
    for text in ["app/decoy-long", &long_path()[1..]] {
        let data = format!("{text}\0");
        put(
            tar,
            header("././@LongLink", b'L', data.len(), |_| {}),
            data.as_bytes(),
        );
    }
    put(
        tar,
        header("short-name", b'0', content.len(), |_| {}),
        content,
    );
    for text in ["decoy", &long_path()] {
        let data = format!("{text}\0");
        put(
            tar,
            header("././@LongLink", b'K', data.len(), |_| {}),
            data.as_bytes(),
        );
    }
    put(tar, header("app/busybox-link", b'2', 0, |_| {}), b"");
}

/// The path the long-named member ends with.
fn long_path() -> String {
    format!("/app/{}/busybox-long", "d".repeat(120))
}

/// A GNU incremental dump of `app/` by GNU tar: `D` entries whose data is
/// the listing, busybox, and a 512 MiB file of holes stored as no data at all.
fn gnu_incremental(sb: &Sandbox) -> Vec<u8> {
    let root = sb.mkdir("dump");
    fs::create_dir_all(root.join("app/bin")).unwrap();
    fs::copy("/bin/busybox", root.join("app/bin/busybox")).unwrap();
    // Last in the dump, as in Go's gnu-incremental.tar: stowage once took its
    // 512 MiB for stored data and called the tar cut short.
    fs::File::create(root.join("app/bin/zz-holes"))
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    let out = sb.join("dump.tar");
    run_ok(
        tool("tar")
            .args([
                "--format=gnu",
                "--sparse",
                "--numeric-owner",
                "--owner=0",
                "--group=0",
                "-C",
            ])
            .arg(&root)
            .arg(format!(
                "--listed-incremental={}",
                sb.join("dump.snar").display()
            ))
            .arg("-cf")
            .arg(&out)
            .arg("app"),
    );
    fs::read(out).unwrap()
}

// --- Go's reader against stowage's ------------------------------------------

#[test]
fn gos_test_archives_and_generated_ones_read_as_gos_reader_reads_them() {
    let Some(lister) = go_lister() else { return };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/go-tar");
    let mut names: Vec<_> = fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 40,
        "Go's test archives in {}",
        fixtures.display()
    );
    let (mut read, mut refused) = (0, 0);
    for path in &names {
        let listing = assert_reads_as_go_does(
            lister,
            &path.display().to_string(),
            &fs::read(path).unwrap(),
        );
        match listing.last().map(String::as_str) {
            Some("end") => read += 1,
            _ => refused += 1,
        }
    }
    // Go's own tests refuse nine of them, and two writer fixtures are cut short.
    assert_eq!((read, refused), (names.len() - 10, 10));
    let content = busybox();
    for layout in [Sparse::OldGnu, Sparse::Pax00, Sparse::Pax01, Sparse::Pax10] {
        let tar = layer(|tar| put_sparse(tar, "app/busybox-sparse", &content, layout));
        let listing = assert_reads_as_go_does(lister, &format!("{layout:?}"), &tar);
        assert!(
            listing.iter().any(|l| l.ends_with(&sha256_hex(&content))),
            "{layout:?}: {listing:?}"
        );
        // Cut inside the stored data: both refuse.
        let cut = &tar[..tar.len() - 1024 - 300];
        assert_eq!(
            assert_reads_as_go_does(lister, "cut", cut).last().unwrap(),
            "error"
        );
    }
    assert_reads_as_go_does(
        lister,
        "twice named",
        &layer(|tar| twice_named(tar, &content)),
    );
    let sb = Sandbox::new();
    let dump = assert_reads_as_go_does(lister, "GNU incremental", &gnu_incremental(&sb));
    // A dump folder (68), a sparse file (83).
    assert!(
        dump.iter().any(|l| l.split(' ').nth(3) == Some("68")),
        "{dump:?}"
    );
    assert_eq!(
        dump[dump.len() - 2].split(' ').nth(3),
        Some("83"),
        "{dump:?}"
    );
}

// --- Such tars as base layers --------------------------------------------------

/// An OCI layout holding one image of `layer`; its reference.
fn oci_base(dir: &Path, layer: &[u8]) -> String {
    let mut desc = write_oci_image(dir, "amd64", layer);
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": "gotar"});
    write_oci_index(dir, &[desc]);
    format!("oci:{}:gotar", dir.display())
}

/// Builds an app over `base` whose command is `command`, into a docker archive.
fn build(sb: &Sandbox, base: &str, command: &str, image: &str) -> (std::process::Output, PathBuf) {
    fs::create_dir_all(sb.join("lib")).unwrap();
    fs::write(sb.join("lib/note.txt"), "app\n").unwrap();
    let spec = sb.join("stowage.toml");
    let text = format!(
        "base = \"{base}\"\n\n[app]\nlibrary = {{ source = \"lib\", target = \"/opt/lib\", owner = \"0:0\" }}\ncommand = [\"{command}\", \"echo\", \"started\"]\n"
    );
    fs::write(&spec, text).unwrap();
    let archive = sb.join(format!("{}.tar", unique("image")));
    let output = sb
        .stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("docker-archive:{}:{image}", archive.display()))
        .output()
        .unwrap();
    (output, archive)
}

/// A classic `docker save` archive at `path` of one image of `layers`, its
/// members named by PAX headers, each twice (the first a decoy), as Go reads them.
fn docker_save_base(path: &Path, layers: &[&[u8]]) -> String {
    let config = serde_json::to_vec(&base_config("amd64", layers)).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let layer_names: Vec<String> = layers
        .iter()
        .map(|l| format!("{}/layer.tar", sha256_hex(l)))
        .collect();
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": ["gotar:base"],
        "Layers": layer_names,
    }]))
    .unwrap();
    let mut tar = Vec::new();
    let mut members = vec![("manifest.json", manifest), (config_name.as_str(), config)];
    members.extend(
        layer_names
            .iter()
            .map(|n| n.as_str())
            .zip(layers.iter().map(|l| l.to_vec())),
    );
    for (name, content) in members {
        for path in ["decoy", name] {
            put_pax(&mut tar, &[("path", path.into())]);
        }
        put(
            &mut tar,
            header("member", b'0', content.len(), |_| {}),
            &content,
        );
    }
    tar.resize(tar.len() + 1024, 0);
    fs::write(path, tar).unwrap();
    format!("docker-archive:{}", path.display())
}

/// A V7 tar (no `ustar` magic, which Go reads all the same) of one file.
fn v7_layer() -> Vec<u8> {
    let mut tar = Vec::new();
    put(
        &mut tar,
        header("app/v7-note", b'0', 3, |b| b[257..265].fill(0)),
        b"v7\n",
    );
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// Builds over a base of `layer` with `command` (the start check reads
/// through the layer to it) and checks what Go's reader finds at that path:
/// busybox, whole (at `file`, where `command` is a symlink). With docker,
/// `runs` says the image must start.
fn builds_and_starts(layer: &[u8], command: &str, file: &str, runs: bool) {
    let sb = Sandbox::new();
    if let Some(lister) = go_lister() {
        let listing = assert_reads_as_go_does(lister, command, layer);
        let name: String = file[1..].bytes().map(|b| format!("{b:02x}")).collect();
        let content = busybox();
        let found = listing
            .iter()
            .find(|l| l.split(' ').nth(1) == Some(name.as_str()));
        let fields: Vec<&str> = found
            .unwrap_or_else(|| panic!("{command} in {listing:?}"))
            .split(' ')
            .collect();
        assert_eq!(
            fields[4],
            content.len().to_string(),
            "{command}: size as Go reads it"
        );
        assert_eq!(
            fields[9],
            sha256_hex(&content),
            "{command}: contents as Go reads them"
        );
    }
    let base = oci_base(&sb.join("base"), layer);
    let image = unique_ref("go-tar");
    let (output, archive) = build(&sb, &base, command, &image);
    assert!(
        output.status.success(),
        "{command}: {}",
        show(&output.stderr)
    );
    // The check looked: a path only an earlier header of the member names is not there.
    let (output, _) = build(&sb, &base, "/app/decoy-pax", &image);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output.stderr));
    assert!(
        show(&output.stderr).contains("/app/decoy-pax is not in the image"),
        "{}",
        show(&output.stderr)
    );
    if !runs || !docker_ready() {
        return;
    }
    run_ok(docker().args(["load", "-i"]).arg(&archive));
    let _cleanup = DockerImage(image.clone());
    let out = run_ok(docker().args(["run", "--rm", "--network", "none", &image]));
    assert_eq!(out.trim(), "started");
}

#[test]
fn a_base_layer_with_unaligned_sparse_maps_builds_and_starts() {
    let content = busybox();
    for layout in [Sparse::OldGnu, Sparse::Pax00, Sparse::Pax01, Sparse::Pax10] {
        let tar = layer(|tar| put_sparse(tar, "app/busybox-sparse", &content, layout));
        // docker refuses old GNU `S` entries when it unpacks ("unhandled tar header type 83").
        let runs = !matches!(layout, Sparse::OldGnu);
        builds_and_starts(&tar, "/app/busybox-sparse", "/app/busybox-sparse", runs);
    }
}

#[test]
fn a_base_layer_naming_a_member_twice_builds_with_the_last_name() {
    let content = busybox();
    let tar = layer(|tar| twice_named(tar, &content));
    builds_and_starts(&tar, "/app/pax/busybox-pax", "/app/pax/busybox-pax", true);
    builds_and_starts(&tar, &long_path(), &long_path(), true);
    builds_and_starts(&tar, "/app/busybox-link", &long_path(), true);
}

#[test]
fn a_gnu_incremental_base_layer_builds() {
    if !require_tool("tar") {
        return;
    }
    let sb = Sandbox::new();
    let tar = gnu_incremental(&sb);
    // docker refuses `D` entries when it unpacks ("unhandled tar header type 68").
    builds_and_starts(&tar, "/app/bin/busybox", "/app/bin/busybox", false);
}

#[test]
fn a_docker_archive_base_of_such_layers_builds_and_starts() {
    let sb = Sandbox::new();
    let content = busybox();
    let named = layer(|tar| twice_named(tar, &content));
    // docker's empty layer: the two end blocks alone.
    let empty = vec![0u8; 1024];
    let v7 = v7_layer();
    let base = docker_save_base(&sb.join("base.tar"), &[&named, &empty, &v7]);
    let image = unique_ref("go-tar");
    let (output, archive) = build(&sb, &base, "/app/pax/busybox-pax", &image);
    assert!(output.status.success(), "{}", show(&output.stderr));
    if !docker_ready() {
        return;
    }
    run_ok(docker().args(["load", "-i"]).arg(&archive));
    let _cleanup = DockerImage(image.clone());
    let out = run_ok(docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/app/pax/busybox-pax",
        &image,
        "cat",
        "/app/v7-note",
    ]));
    assert_eq!(out.trim(), "v7");
}
