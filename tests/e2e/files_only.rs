//! An image with no app library: a Python base plus a `#!/bin/bash` start
//! script and a Python helper, as deployment platforms document their
//! "customised images"; the helper reads deploy-time `NUVLA_*` variables
//! when the container starts.

use std::fs;
use std::path::{Path, PathBuf};

use crate::rig::python_base::{host_python_base, host_python_usable};
use crate::rig::*;

/// The start script: bash, then the helper.
const START_SH: &str = "#!/bin/bash\nset -e\nexec python3 /opt/app/helper.py \"$@\"\n";

/// The helper: each deploy-time name, set (with its length) or unset.
const HELPER_PY: &str = "import os\n\
for name in ('NUVLA_API_KEY', 'NUVLA_API_SECRET'):\n    \
value = os.environ.get(name)\n    \
print(name, 'unset' if value is None else 'set:%d' % len(value))\n";

/// The spec over `base`, with `extra` appended; the two files beside it.
fn write_files_only_app(sb: &Sandbox, base: &Path, extra: &str) -> PathBuf {
    write_file(&sb.join("app/start.sh"), START_SH, 0o755);
    write_file(&sb.join("app/helper.py"), HELPER_PY, 0o644);
    let spec = sb.join("app/stowage.toml");
    fs::write(
        &spec,
        format!(
            "base = \"oci:{}\"\n\n[app]\nentrypoint = [\"/opt/app/start.sh\"]\n\n\
             [[files]]\nsource = \"start.sh\"\ntarget = \"/opt/app/start.sh\"\nmode = \"0755\"\n\n\
             [[files]]\nsource = \"helper.py\"\ntarget = \"/opt/app/helper.py\"\n\n\
             [env]\nPATH = \"/usr/bin:/bin\"\n{extra}",
            base.display()
        ),
    )
    .unwrap();
    spec
}

/// A base with Python and bash, made from the host's.
fn python_bash_base(sb: &Sandbox) -> PathBuf {
    let empty = sb.join("no-venv");
    fs::create_dir_all(&empty).unwrap();
    host_python_base(sb, &empty, &["/usr/bin/bash"])
}

/// Builds the files-only image, deploy-time names listed, and runs it with
/// exactly the flags `run-command` printed on a machine with no records.
#[test]
fn a_files_only_image_runs_with_the_deploy_time_names_it_carries() {
    if !host_python_usable() || !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let base = python_bash_base(&sb);
    let spec = write_files_only_app(
        &sb,
        &base,
        "\n[secrets]\nnames = [\"NUVLA_API_KEY\", \"NUVLA_API_SECRET\"]\n",
    );
    let spec_text = fs::read_to_string(&spec).unwrap();
    let spec_text = spec_text.replace("[app]\n", "[app]\nports = [\"8080/tcp\"]\n");
    fs::write(&spec, spec_text).unwrap();
    let name = unique_ref("files-only");
    let archive = sb.join("image.tar");
    let out = sb
        .stowage()
        .args(["build", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("docker-archive:{}:{name}", archive.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out.stderr));

    // Another machine: no journal, no store; the names come from the image.
    let line = run_ok(
        sb.stowage()
            .env("STOWAGE_STATE_DIR", sb.join("fresh-state"))
            .env("STOWAGE_CACHE_DIR", sb.join("fresh-cache"))
            .arg("run-command")
            .arg(format!("docker-archive:{}", archive.display())),
    );
    let line = line.trim();
    assert!(
        line.starts_with("docker run -p 8080:8080 -e NUVLA_API_KEY -e NUVLA_API_SECRET "),
        "{line}"
    );

    run_ok(docker().args(["load", "-i"]).arg(&archive));
    let _image = DockerImage(name.clone());
    // The printed flags, as a shell would pass them: the key set, the secret not.
    let flags: Vec<&str> = line
        .trim_start_matches("docker run ")
        .split(' ')
        .filter(|word| !word.contains('/') && !word.contains(':'))
        .collect();
    assert_eq!(
        flags,
        ["-p", "-e", "NUVLA_API_KEY", "-e", "NUVLA_API_SECRET"]
    );
    let said = run_ok(
        docker()
            .env("NUVLA_API_KEY", "key-1234")
            .env_remove("NUVLA_API_SECRET")
            .args(["run", "--rm", "--network", "none"])
            .args(&flags[1..])
            .arg(&name),
    );
    assert_eq!(
        said.trim(),
        "NUVLA_API_KEY set:8\nNUVLA_API_SECRET unset",
        "the helper read the variables at run time; the unset one stayed unset"
    );
}
