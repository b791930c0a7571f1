//! Issue 23's gigabyte package: one library package of 2.5 GiB (half
//! incompressible, half text; over 2 GiB on purpose, past any 32-bit size)
//! goes through the package split, the secret scan, compression and a push
//! with its memory bounded and every core compressing its one layer.
//!
//! Peak memory and CPU time are the kernel's, from `wait4`
//! (`rig::run_measured`). The CPU share is measured over the build, which is
//! the compression phase here: the walk and split of five files take no
//! time next to 2.5 GiB. The test runs alone (`.config/nextest.toml`), so
//! no other test takes the cores it measures.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rig::registry::{TestRegistry, random_bytes};
use crate::rig::*;

/// Each half of the package: 1.25 GiB.
const HALF: usize = 5 << 28;

const PEAK_RSS_LIMIT_MIB: u64 = 200;

/// CPU time over wall time of the build, on two cores or more.
const MIN_CPU_PER_WALL: f64 = 1.6;

const SITE: &str = "lib/python3.11/site-packages";

/// The app: `bigpkg` (weights.bin random, corpus.txt text) with pip's
/// dist-info, and a command the start check can follow.
fn write_big_package(root: &Path) -> PathBuf {
    let site = root.join("library").join(SITE);
    let package = site.join("bigpkg");
    fs::create_dir_all(&package).unwrap();
    let mut weights = BufWriter::new(fs::File::create(package.join("weights.bin")).unwrap());
    let chunk = 8 << 20;
    for n in 0..HALF / chunk {
        weights
            .write_all(&random_bytes(0x6167 + n as u64, chunk))
            .unwrap();
    }
    weights.flush().unwrap();
    // Lines of words; the 8 MiB block repeats, far beyond deflate's 32 KiB window.
    let words: Vec<String> = random_bytes(0x7e47, 4000 * 8)
        .chunks(8)
        .map(|c| {
            c.iter()
                .take(2 + usize::from(c[0]) % 7)
                .map(|b| char::from(b'a' + b % 26))
                .collect()
        })
        .collect();
    let picks = random_bytes(0x7e48, chunk);
    let mut block = Vec::with_capacity(chunk + 64);
    for (i, pair) in picks.chunks(2).enumerate() {
        if block.len() >= chunk {
            break;
        }
        let word = &words[(usize::from(pair[0]) << 8 | usize::from(pair[1])) % words.len()];
        block.extend_from_slice(word.as_bytes());
        block.push(if i % 12 == 11 { b'\n' } else { b' ' });
    }
    block.truncate(chunk);
    let mut corpus = BufWriter::new(fs::File::create(package.join("corpus.txt")).unwrap());
    for _ in 0..HALF / chunk {
        corpus.write_all(&block).unwrap();
    }
    corpus.flush().unwrap();
    write_file(
        &site.join("bigpkg-1.0.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: bigpkg\nVersion: 1.0\n",
        0o644,
    );
    write_file(
        &site.join("bigpkg-1.0.dist-info/RECORD"),
        "bigpkg/weights.bin,,\nbigpkg/corpus.txt,,\nbigpkg-1.0.dist-info/METADATA,,\nbigpkg-1.0.dist-info/RECORD,,\n",
        0o644,
    );
    write_file(&root.join("library/run"), exit0_elf(), 0o755);
    let spec = root.join("stowage.toml");
    fs::write(
        &spec,
        "base = \"scratch\"\n[app]\nlibrary = { source = \"library\", target = \"/opt/app\" }\n\
         command = [\"/opt/app/run\"]\n",
    )
    .unwrap();
    spec
}

/// (size, path) of each regular file in a gzip layer blob, as GNU tar lists them.
fn listed_files(blob: &Path) -> Vec<(u64, String)> {
    let out = Command::new("tar").arg("-tvzf").arg(blob).output().unwrap();
    assert!(out.status.success(), "tar: {}", show(&out.stderr));
    show(&out.stdout)
        .lines()
        .filter(|line| line.starts_with('-'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[2].parse().unwrap(), fields[5..].join(" "))
        })
        .collect()
}

#[test]
fn a_2_5_gib_package_builds_and_pushes_in_bounded_memory_on_every_core() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let spec = write_big_package(&sb.join("app"));
    let layout = sb.join("layout");
    let mut build = stowage_process(&sb, &sb.join("cache"));
    build
        .args(["-q", "build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:big", layout.display()));
    let built = run_measured(&mut build);
    assert!(built.ok, "the build failed:\n{}", built.stderr);
    let cpu_per_wall = built.cpu.as_secs_f64() / built.wall.as_secs_f64();
    eprintln!(
        "build: {:?} wall, {:?} CPU ({cpu_per_wall:.2}x), peak {} MiB",
        built.wall,
        built.cpu,
        built.peak_kib / 1024
    );
    assert!(
        built.peak_kib / 1024 < PEAK_RSS_LIMIT_MIB,
        "the build peaked at {} MiB resident",
        built.peak_kib / 1024
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 2 {
        assert!(
            cpu_per_wall >= MIN_CPU_PER_WALL,
            "the build used {cpu_per_wall:.2}x its wall time in CPU on {cores} cores: a core idled"
        );
    }

    // The package is one layer of its own, as tar reads it, at full size.
    let read = Layout::open(&layout);
    let image = read.image("big");
    let package_layer = image
        .layers()
        .iter()
        .map(|layer| {
            let hex = &layer["digest"].as_str().unwrap()["sha256:".len()..];
            listed_files(&layout.join("blobs/sha256").join(hex))
        })
        .find(|files| {
            files
                .iter()
                .any(|(_, path)| path.ends_with("bigpkg/weights.bin"))
        })
        .expect("a layer holds bigpkg");
    for name in ["weights.bin", "corpus.txt"] {
        let path = format!("opt/app/{SITE}/bigpkg/{name}");
        assert!(
            package_layer.contains(&(HALF as u64, path.clone())),
            "{path} of {HALF} bytes in {package_layer:?}"
        );
    }

    let dest = registry.reference("gigabyte/app:1");
    let mut push = stowage_process(&sb, &sb.join("cache"));
    push.args(["-q", "--insecure-registry", &registry.host, "push"])
        .arg(format!("oci:{}:big", layout.display()))
        .arg(&dest);
    let pushed = run_measured(&mut push);
    assert!(pushed.ok, "the push failed:\n{}", pushed.stderr);
    assert!(
        pushed.peak_kib / 1024 < PEAK_RSS_LIMIT_MIB,
        "the push peaked at {} MiB resident",
        pushed.peak_kib / 1024
    );
    assert_eq!(
        registry.skopeo_digest("gigabyte/app:1"),
        read.descriptor("big")["digest"].as_str().unwrap()
    );
}
