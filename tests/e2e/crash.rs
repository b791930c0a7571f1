//! Crash safety, concurrency and full disks.
//!
//! * `kill -9` at seeded random moments of build, push and archive (20 runs
//!   each): after every kill no store blob is corrupt and every output is
//!   whole or absent; the next run succeeds with the same digest; what a
//!   killed run left is only recognisable temp files, which the next run sweeps.
//! * Two stowage processes building into one store and one `oci:` layout at
//!   once both succeed, and both tags are there.
//! * A full disk (a 2 MiB tmpfs) under an archive, a layout or the store:
//!   a clear error, and no temp file or half-written output left.
//!
//! `STOWAGE_CRASH_SEED` replays a run's kill moments (the seed is printed).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use crate::rig::registry::FaultRegistry as Registry;
use crate::rig::*;

const TEMP_PREFIX: &str = ".stowage-tmp-";
const RUNS: usize = 20;

/// A small seeded generator (xorshift64*): the kill moments repeat with the seed.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Rng {
        let seed = std::env::var("STOWAGE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_5107_a9e0_u64);
        eprintln!("kill moments from STOWAGE_CRASH_SEED={seed} (salt {salt})");
        Rng((seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)).max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// Runs `cmd` to the end; it must succeed. Returns the digest it printed and how long it took.
fn complete(mut cmd: StdCommand) -> (String, Duration) {
    let started = Instant::now();
    let out = cmd.output().expect("run stowage");
    assert!(
        out.status.success(),
        "stowage failed after a kill:\n{}",
        show(&out.stderr)
    );
    (parse_printed(&show(&out.stdout)).digest, started.elapsed())
}

/// Starts `cmd` and kills it with SIGKILL after `after`.
/// Returns whether the kill came before the command ended by itself.
fn kill_after(mut cmd: StdCommand, after: Duration) -> bool {
    let mut child = cmd.spawn().expect("start stowage");
    std::thread::sleep(after);
    let running = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// Many kills must land while the command runs, or the loop proves little.
/// (Not all: the kill moments are drawn up to the fastest whole run, and a
/// loaded machine makes some runs faster than others.)
fn assert_killed_mostly(killed: usize) {
    eprintln!("{killed} of {RUNS} runs were killed mid-way");
    assert!(
        killed * 4 >= RUNS,
        "only {killed} of {RUNS} kills landed mid-run"
    );
}

/// Every blob in the store hashes to its name.
fn assert_store_sound(cache: &Path) {
    let dir = cache.join("blobs/sha256");
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256_hex(&fs::read(&path).unwrap()),
            name,
            "store blob {} is corrupt",
            path.display()
        );
    }
}

/// A tar archive stowage wrote is absent, or whole: its index and every
/// blob it names are there and match their digests.
fn assert_archive_whole_or_absent(path: &Path) {
    if !path.exists() {
        return;
    }
    let members = tar_members(&fs::read(path).unwrap());
    let index: serde_json::Value = serde_json::from_slice(
        members
            .get("index.json")
            .unwrap_or_else(|| panic!("{} has no index.json: half-written", path.display())),
    )
    .unwrap();
    let mut wanted: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    while let Some(digest) = wanted.pop() {
        let name = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        let bytes = members
            .get(&name)
            .unwrap_or_else(|| panic!("{} lacks {name}: half-written", path.display()));
        assert_eq!(sha256_digest(bytes), digest, "{name} in {}", path.display());
        if let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(bytes)
            && manifest.get("layers").is_some()
        {
            wanted.push(manifest["config"]["digest"].as_str().unwrap().to_owned());
            for layer in manifest["layers"].as_array().unwrap() {
                wanted.push(layer["digest"].as_str().unwrap().to_owned());
            }
        }
    }
}

/// An OCI layout is absent, or has an index whose every image is whole.
fn assert_layout_whole_or_absent(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let layout = Layout::open(dir);
    for desc in layout.index()["manifests"].as_array().unwrap() {
        let image = layout.image_at(desc["digest"].as_str().unwrap());
        for i in 0..image.layers().len() {
            layout.layer_tar(&image, i);
        }
    }
}

/// Only stowage's temp names are left beside the outputs; the next run
/// sweeps them, however recent (their writer's lock died with it).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(TEMP_PREFIX)
        {
            found.push(path.clone());
        }
        if path.is_dir() && !path.is_symlink() {
            found.extend(leftovers(&path));
        }
    }
    found
}

/// The sample app with `noise` more incompressible bytes in its library,
/// so it takes a while to lay and fills a small disk.
fn big_app(sb: &Sandbox, image: &str, noise: usize) -> PathBuf {
    let root = sb.mkdir("app");
    let spec = write_app(&root, image);
    let mut rng = Rng(7);
    let noise: Vec<u8> = (0..noise).map(|_| rng.below(256) as u8).collect();
    write_file(&root.join("library/share/noise.bin"), &noise, 0o644);
    spec
}

#[test]
fn build_killed_at_random_moments() {
    let sb = Sandbox::new();
    let spec = big_app(&sb, "localhost/stowage-e2e/crash:1", 1 << 20);
    let cache = sb.join("cache");
    let out = sb.mkdir("out");
    let layout = out.join("layout");
    let archive = out.join("app.tar.gz");
    let oci_archive = out.join("app-oci.tar");
    let build = || {
        let mut cmd = stowage_process(&sb, &cache);
        cmd.args(["-q", "build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:v1", layout.display()))
            .arg("-o")
            .arg(format!("docker-archive:{}", archive.display()))
            .arg("-o")
            .arg(format!("oci-archive:{}:v1", oci_archive.display()));
        cmd
    };
    let (expected, cold) = complete(build());
    // The fastest of a cold and two warm runs: kill moments are drawn below it.
    let full = cold.min(complete(build()).1).min(complete(build()).1);
    let mut rng = Rng::new(1);
    let mut killed = 0;
    for run in 0..RUNS {
        // Every third run starts from an empty store, so kills land in layer writing too.
        if run % 3 == 0 {
            let _ = fs::remove_dir_all(&cache);
        }
        let after = Duration::from_millis(rng.below(full.as_millis() as u64 + 1));
        killed += usize::from(kill_after(build(), after));
        assert_store_sound(&cache);
        assert_layout_whole_or_absent(&layout);
        assert_archive_whole_or_absent(&archive);
        assert_archive_whole_or_absent(&oci_archive);
        let (digest, _) = complete(build());
        assert_eq!(digest, expected, "run {run} (killed after {after:?})");
    }
    assert_killed_mostly(killed);
    assert_layout_whole_or_absent(&layout);
    assert_eq!(Layout::open(&layout).descriptor("v1")["digest"], expected);
    // A killed run leaves at most temp files; the next run sweeps them at once.
    complete(build());
    assert_eq!(leftovers(sb.path()), Vec::<PathBuf>::new());
}

#[test]
fn push_killed_at_random_moments() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let spec = big_app(&sb, "localhost/stowage-e2e/crash:1", 1 << 20);
    let cache = sb.join("cache");
    let layout = sb.join("layout");
    let mut build = stowage_process(&sb, &cache);
    build
        .args(["-q", "build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:v1", layout.display()));
    let (expected, _) = complete(build);
    let dest = registry.reference("crash/push:v1");
    let push = || {
        let mut cmd = stowage_process(&sb, &cache);
        cmd.args(["-q", "--insecure-registry", &registry.host, "push"])
            .arg(format!("oci:{}:v1", layout.display()))
            .arg(&dest);
        cmd
    };
    // The fastest of three whole pushes to fresh repositories: kill moments are drawn below it.
    let (_, mut full) = complete(push());
    for i in 0..2 {
        let mut cmd = stowage_process(&sb, &cache);
        cmd.args(["-q", "--insecure-registry", &registry.host, "push"])
            .arg(format!("oci:{}:v1", layout.display()))
            .arg(registry.reference(&format!("crash/calibrate{i}:v1")));
        full = full.min(complete(cmd).1);
    }
    let mut rng = Rng::new(2);
    let mut killed = 0;
    for run in 0..RUNS {
        // A fresh repository now and then, so kills land mid-upload and not only on skips.
        let dest_run = if run % 2 == 0 {
            registry.reference(&format!("crash/push{run}:v1"))
        } else {
            dest.clone()
        };
        let make = || {
            let mut cmd = stowage_process(&sb, &cache);
            cmd.args(["-q", "--insecure-registry", &registry.host, "push"])
                .arg(format!("oci:{}:v1", layout.display()))
                .arg(&dest_run);
            cmd
        };
        let after = Duration::from_millis(rng.below(full.as_millis() as u64 + 1));
        killed += usize::from(kill_after(make(), after));
        assert_store_sound(&cache);
        let (digest, _) = complete(make());
        assert_eq!(digest, expected, "run {run} (killed after {after:?})");
        if run % 5 == 4 {
            let repo_tag = dest_run.split_once('/').unwrap().1;
            assert_eq!(registry.skopeo_digest(repo_tag), expected);
        }
    }
    assert_killed_mostly(killed);
    assert_eq!(registry.skopeo_digest("crash/push:v1"), expected);
}

#[test]
fn archive_killed_at_random_moments() {
    let Some(registry) = Registry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let spec = big_app(&sb, "localhost/stowage-e2e/crash:1", 1 << 20);
    let source = registry.reference("crash/archive:v1");
    let mut build = stowage_process(&sb, &sb.join("build-cache"));
    build
        .args(["-q", "--insecure-registry", &registry.host, "build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(&source);
    let (expected, _) = complete(build);
    let cache = sb.join("cache");
    let out = sb.mkdir("out");
    let archive = out.join("pulled.tar.gz");
    let pull = || {
        let mut cmd = stowage_process(&sb, &cache);
        cmd.args(["-q", "--insecure-registry", &registry.host, "archive"])
            .arg(&source)
            .arg("-o")
            .arg(&archive);
        cmd
    };
    // The fastest of three whole pulls from an empty store: kill moments are drawn below it.
    let mut full = Duration::MAX;
    for _ in 0..3 {
        let _ = fs::remove_dir_all(&cache);
        full = full.min(complete(pull()).1);
    }
    let mut rng = Rng::new(3);
    let mut killed = 0;
    for run in 0..RUNS {
        // Half the runs download everything again, so kills land mid-download too.
        if rng.below(2) == 0 {
            let _ = fs::remove_dir_all(&cache);
        }
        let after = Duration::from_millis(rng.below(full.as_millis() as u64 + 1));
        killed += usize::from(kill_after(pull(), after));
        assert_store_sound(&cache);
        assert_archive_whole_or_absent(&archive);
        let (digest, _) = complete(pull());
        assert_eq!(digest, expected, "run {run} (killed after {after:?})");
        assert_archive_whole_or_absent(&archive);
    }
    assert_killed_mostly(killed);
    complete(pull());
    assert_eq!(leftovers(sb.path()), Vec::<PathBuf>::new());
}

#[test]
fn two_builds_into_one_store_and_one_layout_at_once() {
    let sb = Sandbox::new();
    let cache = sb.join("cache");
    let specs: Vec<PathBuf> = (0..2)
        .map(|i| {
            let root = sb.mkdir(format!("app{i}"));
            let spec = write_app(&root, &format!("localhost/stowage-e2e/twins:{i}"));
            write_file(
                &root.join("workspace/notes.txt"),
                format!("twin {i}\n"),
                0o644,
            );
            spec
        })
        .collect();
    for round in 0..4 {
        let layout = sb.join(format!("shared-{round}"));
        let children: Vec<_> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let mut cmd = stowage_process(&sb, &cache);
                cmd.args(["-q", "build", "-f"])
                    .arg(spec)
                    .arg("-o")
                    .arg(format!("oci:{}:twin{i}", layout.display()));
                cmd.spawn().expect("start stowage")
            })
            .collect();
        let digests: Vec<String> = children
            .into_iter()
            .map(|child| {
                let out = child.wait_with_output().unwrap();
                assert!(out.status.success(), "{}", show(&out.stderr));
                parse_printed(&show(&out.stdout)).digest
            })
            .collect();
        assert_ne!(digests[0], digests[1]);
        let read = Layout::open(&layout);
        for (i, digest) in digests.iter().enumerate() {
            assert_eq!(
                read.descriptor(&format!("twin{i}"))["digest"],
                digest.as_str(),
                "round {round}: tag twin{i} was lost"
            );
        }
        assert_layout_whole_or_absent(&layout);
    }
    assert_store_sound(&cache);
    assert_eq!(leftovers(sb.path()), Vec::<PathBuf>::new());
}

/// A 2 MiB tmpfs at `dir`, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: PathBuf) -> Option<SmallDisk> {
        if !require_tool("mount") {
            return None;
        }
        if !is_root() {
            skip_or_fail("mounting a tmpfs needs root");
            return None;
        }
        fs::create_dir_all(&dir).unwrap();
        let out = StdCommand::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount tmpfs: {}", show(&out.stderr));
        Some(SmallDisk(dir))
    }

    /// Everything on the disk, by name.
    fn contents(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut stack = vec![self.0.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                names.push(path.strip_prefix(&self.0).unwrap().display().to_string());
                if path.is_dir() {
                    stack.push(path);
                }
            }
        }
        names.sort();
        names
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = StdCommand::new("umount").arg(&self.0).status();
    }
}

fn failed_for_space(out: &std::process::Output) -> String {
    let stderr = show(&out.stderr);
    assert!(!out.status.success(), "a full disk must fail the command");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains("is full"),
        "a hint about the full disk:\n{stderr}"
    );
    stderr
}

#[test]
fn a_full_disk_under_the_outputs_leaves_nothing_half_written() {
    let sb = Sandbox::new();
    let Some(disk) = SmallDisk::mount(sb.join("small")) else {
        return;
    };
    let spec = big_app(&sb, "localhost/stowage-e2e/full:1", 3 << 20);
    for dest in [
        format!("docker-archive:{}/app.tar", disk.0.display()),
        format!("oci-archive:{}/app-oci.tar", disk.0.display()),
        format!("oci:{}/layout:v1", disk.0.display()),
    ] {
        let out = sb
            .stowage()
            .args(["-q", "build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(&dest)
            .output()
            .unwrap();
        failed_for_space(&out);
        assert_eq!(disk.contents(), Vec::<String>::new(), "{dest}");
    }
    // The store is fine, and a destination with room works.
    assert_store_sound(&sb.join("cache"));
    run_ok(
        sb.stowage()
            .args(["-q", "build", "-f"])
            .arg(&spec)
            .arg("-o")
            .arg(format!("oci:{}:v1", sb.join("roomy").display())),
    );
}

#[test]
fn a_full_disk_under_the_store_leaves_no_temp_file() {
    let sb = Sandbox::new();
    let Some(disk) = SmallDisk::mount(sb.join("small-cache")) else {
        return;
    };
    let spec = big_app(&sb, "localhost/stowage-e2e/full:1", 3 << 20);
    let out = stowage_with_cache(&disk.0)
        .args(["-q", "build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:v1", sb.join("layout").display()))
        .output()
        .unwrap();
    let stderr = failed_for_space(&out);
    assert!(stderr.contains("STOWAGE_CACHE_DIR"), "{stderr}");
    assert!(!sb.join("layout").exists());
    let names = disk.contents();
    assert!(
        names.iter().all(|n| !n.contains(TEMP_PREFIX)),
        "temp files left: {names:?}"
    );
    assert_store_sound(&disk.0);
}
