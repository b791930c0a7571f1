//! Relocation: a venv and a conda env made at one prefix and exported to
//! another, the rewritten bytes checked file by file from the layer, the
//! relocated venv run under `docker run` and `podman run` on a Python base
//! made from the host's own Python, and the refusals (a longer prefix for
//! a binary, `relocate = false`, editable installs).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::rig::http::http_request;
use crate::rig::libraries::{conda_env, pip_install, require_pytools};
use crate::rig::python_base::{LOCKED_DOWN, host_python_base, host_python_usable, stale_bytecode};
use crate::rig::*;

/// A spec exporting `library` to `target` over `base`, running cowsay.
fn write_spec(sb: &Sandbox, library: &Path, target: &str, base: &str, extra: &str) -> PathBuf {
    let spec = sb.join("stowage.toml");
    fs::write(
        &spec,
        format!(
            "base = \"{base}\"\n[app]\nlibrary = {{ source = \"{}\", target = \"{target}\"{extra} }}\ncommand = [\"{target}/bin/cowsay\", \"-t\", \"relocated\"]\n",
            library.display()
        ),
    )
    .unwrap();
    spec
}

fn build(sb: &Sandbox, spec: &Path, dest: &str, extra: &[&str]) -> Output {
    sb.stowage()
        .args(["build", "--library-layers", "1", "-f"])
        .arg(spec)
        .args(["-o", dest])
        .args(extra)
        .output()
        .unwrap()
}

/// The library layer's members (the only layer over scratch).
fn library_members(layout: &Path) -> (std::collections::BTreeMap<String, Vec<u8>>, Vec<TarEntry>) {
    let layout = Layout::open(layout);
    let image = layout.image("latest");
    let last = image.layers().len() - 1;
    let tar = layout.layer_tar(&image, last);
    (tar_members(&tar), tar_entries(&tar))
}

/// A venv made by Debian's `python3 -m venv` at `<sandbox>/build/area/venv`, with cowsay.
fn cowsay_venv(sb: &Sandbox) -> PathBuf {
    let venv = sb.join("build/area/venv");
    let made = Command::new("/usr/bin/python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", show(&made.stderr));
    pip_install(&venv, "cowsay");
    venv
}

#[test]
fn a_venv_made_elsewhere_is_rewritten_in_the_layer_only() {
    if !require_pytools() {
        return;
    }
    let sb = Sandbox::new();
    let venv = cowsay_venv(&sb);
    let old = venv.to_str().unwrap().to_owned();
    let spec = write_spec(&sb, &venv, "/opt/venv", "scratch", "");
    let dest = format!("oci:{}", sb.join("layout").display());

    // Scratch lacks the venv's python (the start check below says so): the plan alone is shown here.
    let out = build(&sb, &spec, &dest, &["--dry-run", "--no-start-check"]);
    let stdout = show(&out.stdout);
    assert!(out.status.success(), "{}", show(&out.stderr));
    assert!(
        stdout.contains(&format!("relocate   {old} → /opt/venv: ")),
        "{stdout}"
    );
    for line in [
        "shebang  /opt/venv/bin/cowsay",
        "text     /opt/venv/pyvenv.cfg",
        "text     /opt/venv/bin/activate",
    ] {
        assert!(stdout.contains(line), "{line} in:\n{stdout}");
    }

    // On scratch the relocated script's interpreter (/opt/venv/bin/python,
    // a link to the base's /usr/bin/python3) is missing: the start check
    // refuses it, naming the chain of links, and writes nothing.
    let out = build(&sb, &spec, &dest, &[]);
    let stderr = show(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "/opt/venv/bin/cowsay: its interpreter /opt/venv/bin/python -> /opt/venv/bin/python3 \
             -> /usr/bin/python3: /usr/bin/python3 is not in the image"
        ),
        "{stderr}"
    );
    assert!(!sb.join("layout").exists(), "nothing written");

    // The bytes are what this test is about: check them without a Python base.
    let metadata = sb.join("metadata.json");
    let out = build(
        &sb,
        &spec,
        &dest,
        &[
            "--no-start-check",
            "--metadata-file",
            metadata.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out.stderr));
    let meta = read_json(&metadata);
    assert_eq!(meta["relocation"]["from"], Value::from(old.as_str()));
    assert_eq!(meta["relocation"]["to"], "/opt/venv");
    let listed: Vec<&str> = meta["relocation"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&"/opt/venv/bin/cowsay"), "{listed:?}");

    let (members, entries) = library_members(&sb.join("layout"));
    let cowsay = &members["opt/venv/bin/cowsay"];
    assert!(
        cowsay.starts_with(b"#!/opt/venv/bin/python\n"),
        "{}",
        show(cowsay)
    );
    let cfg = show(&members["opt/venv/pyvenv.cfg"]);
    assert!(cfg.contains("home = /usr/bin"), "{cfg}");
    assert!(cfg.contains("-m venv /opt/venv"), "{cfg}");
    assert!(show(&members["opt/venv/bin/activate"]).contains("VIRTUAL_ENV=/opt/venv"));
    // Every listed file, and only those, changed; compiled files keep their debug paths.
    for (name, bytes) in &members {
        let named = bytes.windows(old.len()).any(|w| w == old.as_bytes());
        assert!(!named || name.ends_with(".pyc"), "{name} still names {old}");
    }
    let python3 = entries
        .iter()
        .find(|e| e.path == b"opt/venv/bin/python3")
        .expect("bin/python3");
    assert_eq!(python3.link.as_deref(), Some(&b"/usr/bin/python3"[..]));
    // The source is never touched.
    let on_disk = fs::read(venv.join("bin/cowsay")).unwrap();
    assert!(on_disk.starts_with(format!("#!{old}/bin/python").as_bytes()));

    // relocate = false: the mismatch is a spec error with a position.
    let spec = write_spec(&sb, &venv, "/opt/venv", "scratch", ", relocate = false");
    let out = build(&sb, &spec, &dest, &[]);
    let stderr = show(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("stowage.toml:3:"), "{stderr}");
    assert!(stderr.contains(&format!("installed at {old}")), "{stderr}");
    assert!(stderr.contains(&format!("target = \"{old}\"")), "{stderr}");
}

#[test]
fn the_relocated_venv_runs_under_docker_and_podman() {
    if !host_python_usable() || !require_pytools() {
        return;
    }
    let docker_ok = docker_ready();
    let podman_ok = podman_ready();
    if !docker_ok && !podman_ok {
        return;
    }
    let sb = Sandbox::new();
    let venv = cowsay_venv(&sb);
    let base = host_python_base(&sb, &venv, &[]);
    let spec = write_spec(
        &sb,
        &venv,
        "/opt/venv",
        &format!("oci:{}", base.display()),
        "",
    );
    let name = unique_ref("relocated-cowsay");
    let archive = sb.join("image.tar");
    let out = build(
        &sb,
        &spec,
        &format!("docker-archive:{}:{name}", archive.display()),
        &[],
    );
    assert!(out.status.success(), "{}", show(&out.stderr));
    if docker_ok {
        run_ok(docker().args(["load", "-i"]).arg(&archive));
        let _image = DockerImage(name.clone());
        let said = run_ok(docker().args(["run", "--rm", "--network", "none", &name]));
        assert!(said.contains("relocated"), "docker run printed:\n{said}");
    }
    if podman_ok {
        run_ok(podman().args(["load", "-i"]).arg(&archive));
        let _image = PodmanImage(name.clone());
        let said = run_ok(podman().args(["run", "--rm", "--network", "none", &name]));
        assert!(said.contains("relocated"), "podman run printed:\n{said}");
    }
}

#[test]
fn a_conda_env_is_relocated_text_replaced_and_binaries_nul_padded() {
    let sb = Sandbox::new();
    let (env, _) = conda_env(&sb.join("build/envs/app"));
    let old = env.to_str().unwrap().to_owned();
    let spec = write_spec(&sb, &env, "/opt/conda", "scratch", "");
    let dest = format!("oci:{}", sb.join("layout").display());
    // The env's programs need a base with a C library; this test checks bytes only.
    let out = build(&sb, &spec, &dest, &["--no-start-check"]);
    assert!(out.status.success(), "{}", show(&out.stderr));
    let (members, _) = library_members(&sb.join("layout"));

    let pc = show(&members["opt/conda/lib/pkgconfig/zlib.pc"]);
    assert!(pc.starts_with("prefix=/opt/conda\n"), "{pc}");
    let installed = fs::read(env.join("lib/libz.so.1.3.1")).unwrap();
    let relocated = &members["opt/conda/lib/libz.so.1.3.1"];
    assert_eq!(
        relocated.len(),
        installed.len(),
        "a binary keeps its length"
    );
    let at = installed
        .windows(old.len())
        .position(|w| w == old.as_bytes())
        .unwrap();
    let mut expected = b"/opt/conda/lib".to_vec();
    expected.resize(old.len() + "/lib".len() + 1, 0);
    assert_eq!(&relocated[at..at + expected.len()], expected.as_slice());
    assert_eq!(&relocated[..at], &installed[..at]);
    let after = at + old.len() + "/lib".len() + 1;
    assert_eq!(&relocated[after..], &installed[after..]);

    // A longer target cannot fit in the binary's strings.
    let long = format!("/opt/{}", "x".repeat(old.len()));
    let spec = write_spec(&sb, &env, &long, "scratch", "");
    let out = build(&sb, &spec, &dest, &[]);
    let stderr = show(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lib/libz.so.1.3.1"), "{stderr}");
    assert!(stderr.contains(&format!("target = \"{old}\"")), "{stderr}");
}

#[test]
fn editable_installs_with_code_outside_the_library_stop_the_build() {
    let sb = Sandbox::new();
    let library = sb.mkdir("library");
    let site = library.join("lib/python3.11/site-packages");
    fs::create_dir_all(&site).unwrap();
    fs::write(
        site.join("__editable__.mypkg-0.1.pth"),
        "/home/dev/mypkg/src\n",
    )
    .unwrap();
    let spec = write_spec(&sb, &library, "/opt/app", "scratch", "");
    let dest = format!("oci:{}", sb.join("layout").display());
    let out = build(&sb, &spec, &dest, &["--dry-run"]);
    let stderr = show(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("package mypkg is an editable install"),
        "{stderr}"
    );
    assert!(stderr.contains("/home/dev/mypkg/src"), "{stderr}");

    fs::remove_file(site.join("__editable__.mypkg-0.1.pth")).unwrap();
    fs::write(site.join("otherpkg.egg-link"), "/srv/otherpkg\n.\n").unwrap();
    let out = build(&sb, &spec, &dest, &["--dry-run"]);
    let stderr = show(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("package otherpkg"), "{stderr}");
}

/// JupyterLab, installed into a venv elsewhere (the rig's shared one) and
/// exported to /opt/venv on the host-Python base, starts under `docker run`
/// and answers `/api/status`.
#[test]
fn a_relocated_jupyterlab_venv_answers_api_status_under_docker() {
    if !host_python_usable() || !require_pytools() || !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let venv = crate::rig::libraries::jupyterlab_venv_shared();
    let base = host_python_base(&sb, &venv, &[]);
    let port = crate::rig::registry::free_port();
    let spec = sb.join("stowage.toml");
    fs::write(
        &spec,
        format!(
            "base = \"oci:{}\"\n[app]\nlibrary = {{ source = \"{}\", target = \"/opt/venv\" }}\n\
             command = [\"jupyter-lab\", \"--no-browser\", \"--allow-root\", \"--ServerApp.ip=127.0.0.1\", \
             \"--ServerApp.port={port}\", \"--ServerApp.token=\", \"--ServerApp.root_dir=/tmp\"]\n\
             [env]\nPATH = \"/opt/venv/bin:/usr/bin\"\nHOME = \"/root\"\n",
            base.display(),
            venv.display()
        ),
    )
    .unwrap();
    let name = unique_ref("relocated-jupyterlab");
    let archive = sb.join("image.tar");
    let out = build(
        &sb,
        &spec,
        &format!("docker-archive:{}:{name}", archive.display()),
        &[],
    );
    assert!(out.status.success(), "{}", show(&out.stderr));
    run_ok(docker().args(["load", "-i"]).arg(&archive));
    let _image = DockerImage(name.clone());
    let container = unique("jupyterlab");
    run_ok(docker().args([
        "run",
        "-d",
        "--name",
        &container,
        "--network",
        "host",
        &name,
    ]));
    let _running = DockerContainer(container.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        match http_request(&format!("127.0.0.1:{port}"), "GET", "/api/status", &[], b"") {
            Ok(response) if response.status == 200 => break response,
            _ if std::time::Instant::now() > deadline => {
                let logs = docker().args(["logs", &container]).output().unwrap();
                panic!(
                    "JupyterLab did not answer /api/status in 90 s:\n{}{}",
                    show(&logs.stdout),
                    show(&logs.stderr)
                );
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(500)),
        }
    };
    let body: Value = serde_json::from_slice(&status.body).unwrap();
    assert!(body.get("started").is_some(), "{body}");

    // pip's bytecode, made at the venv's old path, is valid in the image:
    // a user who cannot write the venv recompiles nothing.
    let out = docker()
        .args(LOCKED_DOWN)
        .args([
            &name,
            "/opt/venv/bin/python",
            "-v",
            "-c",
            "import jupyter_server.serverapp",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out.stderr));
    let verbose = show(&out.stderr);
    let stale = stale_bytecode(&verbose);
    assert!(
        stale.is_empty(),
        "{} stale: {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
}
