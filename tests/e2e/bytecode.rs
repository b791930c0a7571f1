//! Valid bytecode by construction: a venv's `.pyc` files, made by pip at one
//! path and exported to another, are used by Python in the image as an
//! unprivileged user on a read-only root filesystem (none stale), so the
//! import costs what it costs after `compileall`; and the image stays
//! reproducible.

use std::fs;
use std::path::{Path, PathBuf};

use crate::rig::libraries::{numpy_venv, require_pytools};
use crate::rig::python_base::{LOCKED_DOWN, host_python_base, host_python_usable, stale_bytecode};
use crate::rig::*;

/// Times `import numpy` in fresh processes of the image's venv and of a
/// compileall'd copy in /tmp, interleaved, and prints the fastest of each.
const TIME_IMPORTS: &str = r#"
import compileall, shutil, subprocess
shutil.copytree('/opt/venv', '/tmp/venv', symlinks=True)
compileall.compile_dir('/tmp/venv/lib', quiet=1)
probe = 'import time; t = time.perf_counter(); import numpy; print(time.perf_counter() - t)'
def once(python):
    return float(subprocess.run([python, '-c', probe], capture_output=True, text=True, check=True).stdout)
image, compiled = [], []
for _ in range(15):
    image.append(once('/opt/venv/bin/python'))
    compiled.append(once('/tmp/venv/bin/python'))
print(min(image), min(compiled))
"#;

/// The spec exporting `venv` to /opt/venv over `base`.
fn write_spec(sb: &Sandbox, venv: &Path, base: &Path) -> PathBuf {
    let spec = sb.join("stowage.toml");
    fs::write(
        &spec,
        format!(
            "base = \"oci:{}\"\n[app]\nlibrary = {{ source = \"{}\", target = \"/opt/venv\" }}\n\
             command = [\"/opt/venv/bin/python\", \"-c\", \"import numpy\"]\n\
             [env]\nPATH = \"/opt/venv/bin:/usr/bin\"\n",
            base.display(),
            venv.display()
        ),
    )
    .unwrap();
    spec
}

/// Builds `spec` into `archive` named `name` with the store at `cache`; the printed reference.
fn build(sb: &Sandbox, spec: &Path, archive: &Path, name: &str, cache: &Path) -> String {
    let out = sb
        .stowage()
        .env("STOWAGE_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["build", "-f"])
        .arg(spec)
        .arg("-o")
        .arg(format!("docker-archive:{}:{name}", archive.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out.stderr));
    show(&out.stdout).trim().to_string()
}

/// What `python -v` said about the venv's bytecode: (stale, loaded from a .pyc).
fn bytecode_report(verbose: &str) -> (Vec<&str>, usize) {
    let stale = stale_bytecode(verbose);
    let loaded = verbose
        .lines()
        .filter(|l| l.starts_with("# code object from '/opt/venv/"))
        .count();
    (stale, loaded)
}

#[test]
fn a_relocated_numpy_venv_imports_from_its_bytecode_read_only_and_unprivileged() {
    if !host_python_usable() || !require_pytools() || !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let venv = numpy_venv(&sb.join("build/area/venv"));
    let base = host_python_base(&sb, &venv, &[]);
    let spec = write_spec(&sb, &venv, &base);
    let name = unique_ref("numpy-bytecode");
    let archive = sb.join("image.tar");
    let first = build(&sb, &spec, &archive, &name, &sb.join("store-1"));
    let again = build(
        &sb,
        &spec,
        &sb.join("again.tar"),
        &name,
        &sb.join("store-2"),
    );
    let digest = |line: &str| line.rsplit_once('@').map(|(_, d)| d.to_string());
    assert_eq!(
        digest(&first),
        digest(&again),
        "two fresh stores, one digest"
    );
    assert!(digest(&first).is_some(), "{first}");

    run_ok(docker().args(["load", "-i"]).arg(&archive));
    let _image = DockerImage(name.clone());
    let locked_down = LOCKED_DOWN;
    let out = docker()
        .args(locked_down)
        .args([&name, "/opt/venv/bin/python", "-v", "-c", "import numpy"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out.stderr));
    let verbose = show(&out.stderr);
    let (stale, loaded) = bytecode_report(&verbose);
    assert!(
        stale.is_empty(),
        "{} stale: {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
    assert!(
        loaded > 50,
        "numpy's modules came from their .pyc files ({loaded})"
    );

    let timed = run_ok(
        docker()
            .args(locked_down)
            .args(["--tmpfs", "/tmp:exec"])
            .args([&name, "/opt/venv/bin/python", "-c", TIME_IMPORTS]),
    );
    // The fastest of fifteen interleaved runs each: the import's own cost,
    // with the noise of other tests on the same cores taken out.
    let fastest: Vec<f64> = timed
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    let (image, compiled) = (fastest[0], fastest[1]);
    eprintln!("import numpy: image {image:.3} s, after compileall {compiled:.3} s");
    assert!(
        image <= compiled * 1.10,
        "import numpy from the image's bytecode took {image:.3} s, after compileall {compiled:.3} s"
    );
}
