//! The export policy (`--policy`, `stowage check`) on real packages: an
//! AGPL package from PyPI, the JupyterLab venv, Debian's build of a CRAN
//! package, conda-meta records naming real channels; and the overwrite
//! rule against a real registry with two journals.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::rig::libraries::{conda_env_from, jupyterlab_venv_shared, pymupdf_venv_shared};
use crate::rig::registry::TestRegistry;
use crate::rig::{Sandbox, export_records, run_ok, sha256_hex};

/// A spec of `library` (and a workspace when given) over scratch, exported to `image`.
fn spec(sb: &Sandbox, library: &Path, workspace: Option<&Path>, image: &str) -> PathBuf {
    let workspace = workspace
        .map(|w| {
            format!(
                "workspace = {{ source = \"{}\", target = \"/home/user/work\" }}\n",
                w.display()
            )
        })
        .unwrap_or_default();
    let text = format!(
        "base = \"scratch\"\nimage = \"{image}\"\n[app]\nlibrary = {{ source = \"{}\", target = \"/opt/app\" }}\n{workspace}",
        library.display()
    );
    let path = sb.join("stowage.toml");
    fs::write(&path, text).unwrap();
    path
}

fn policy(sb: &Sandbox, text: &str) -> PathBuf {
    let path = sb.join("policy.toml");
    fs::write(&path, text).unwrap();
    path
}

/// `stowage check --json`'s answer and exit code.
fn check_json(sb: &Sandbox) -> (Value, i32) {
    let out = sb
        .stowage()
        .args(["--json", "check", "--policy", "policy.toml"])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (json, out.status.code().unwrap_or(-1))
}

fn rules(report: &Value) -> Vec<String> {
    report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap().to_string())
        .collect()
}

const RESEARCH: &str = "[licenses]\ndeny = [\"AGPL-*\", \"SSPL-*\"]\nunknown = \"warn\"\n";

#[test]
fn an_agpl_package_is_refused_with_its_version_license_and_policy_line() {
    let sb = Sandbox::new();
    let venv = pymupdf_venv_shared();
    spec(&sb, &venv, None, "docker.io/acme/public:pdf");
    policy(&sb, RESEARCH);
    let out = sb
        .stowage()
        .args(["build", "-o", "oci:out", "--policy", "policy.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "pkg:pypi/pymupdf@1.24.14",
        // `License: GNU AFFERO GPL 3.0`, which the inventory reads as the one license it names.
        "license AGPL-3.0-only",
        "licenses.deny",
        "policy line 2",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from: {stderr}");
    }
    assert!(!sb.join("out").exists(), "nothing is written");
    let records = export_records(&sb);
    let notes = records[0]["notes"].to_string();
    assert_eq!(records[0]["status"], "failed");
    assert!(
        notes.contains("policy violation: pkg:pypi/pymupdf@1.24.14"),
        "{notes}"
    );
    assert!(notes.contains("policy: sha256:"), "{notes}");
    // Without the policy it is exported.
    run_ok(sb.stowage().args(["build", "-o", "oci:out"]));
    assert!(sb.join("out/index.json").exists());
}

#[test]
fn the_jupyterlab_venv_is_eligible_under_a_research_policy() {
    let sb = Sandbox::new();
    spec(&sb, &jupyterlab_venv_shared(), None, "oci:img:lab");
    policy(&sb, RESEARCH);
    let (report, code) = check_json(&sb);
    assert_eq!(report["eligible"], true, "{report:#}");
    assert_eq!(code, 0);
    let warnings = report["warnings"].as_array().unwrap();
    // With licenses concluded from license files there may be none; any there is names a package.
    for w in warnings {
        assert!(w["subject"].as_str().unwrap().starts_with("pkg:"), "{w}");
        assert_eq!(w["rule"], "licenses.unknown");
        assert_eq!(w["policy_line"], 3);
    }
    // Stable: the same answer twice, in the documented shape.
    let (again, _) = check_json(&sb);
    assert_eq!(report, again);
    let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["eligible", "violations", "warnings"]);
    let text = run_ok(sb.stowage().args(["check", "--policy", "policy.toml"]));
    assert_eq!(text.lines().next(), Some("eligible"));
}

#[test]
fn debians_cran_license_is_evaluated_as_an_expression() {
    let mass = Path::new("/usr/lib/R/library/MASS");
    assert!(
        mass.join("DESCRIPTION").exists(),
        "r-cran-mass is installed by scripts/test-env.sh"
    );
    let sb = Sandbox::new();
    let library = sb.mkdir("rlib");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(mass)
        .arg(&library)
        .status()
        .unwrap();
    assert!(copied.success());
    spec(&sb, &library, None, "oci:img:r");
    // `GPL-2 | GPL-3`: either side allowed is enough.
    for (text, eligible) in [
        ("[licenses]\nallow = [\"GPL-3.0-only\"]\n", true),
        ("[licenses]\ndeny = [\"GPL-2.0-only\"]\n", true),
        (
            "[licenses]\ndeny = [\"GPL-2.0-only\", \"GPL-3.0-only\"]\n",
            false,
        ),
        ("[licenses]\nallow = [\"MIT\"]\n", false),
    ] {
        policy(&sb, text);
        let (report, code) = check_json(&sb);
        assert_eq!(report["eligible"], eligible, "{text}: {report:#}");
        assert_eq!(code, if eligible { 0 } else { 1 });
        if !eligible {
            let v = &report["violations"][0];
            assert_eq!(v["subject"], "pkg:cran/MASS@7.3-58.2", "{v}");
            assert!(
                v["detail"]
                    .as_str()
                    .unwrap()
                    .contains("GPL-2.0-only OR GPL-3.0-only"),
                "{v}"
            );
        }
    }
}

#[test]
fn anaconda_channels_are_refused_and_conda_forge_passes() {
    let text = "[packages]\ndeny_channels = [\"defaults\", \"https://repo.anaconda.com/*\"]\n";
    for (channel, eligible) in [
        ("https://repo.anaconda.com/pkgs/main", false),
        ("conda-forge", true),
    ] {
        let sb = Sandbox::new();
        let (env, _) = conda_env_from(&sb.join("env"), channel);
        spec(&sb, &env, None, "oci:img:conda");
        policy(&sb, text);
        let (report, _) = check_json(&sb);
        assert_eq!(report["eligible"], eligible, "{channel}: {report:#}");
        if !eligible {
            assert!(rules(&report).iter().all(|r| r == "packages.deny_channels"));
            assert_eq!(report["violations"][0]["policy_line"], 2);
        }
    }
}

#[test]
fn files_sizes_and_destinations_are_refused_before_anything_is_written() {
    let sb = Sandbox::new();
    let library = sb.mkdir("lib");
    fs::write(library.join("app.py"), "print('hi')\n").unwrap();
    let workspace = sb.mkdir("ws");
    fs::write(workspace.join("matlab.lic"), "SERVER x\n").unwrap();
    fs::write(workspace.join("data.bin"), vec![7u8; 4096]).unwrap();
    spec(
        &sb,
        &library,
        Some(&workspace),
        "127.0.0.1:1/other/app:latest",
    );
    policy(
        &sb,
        "[files]\ndeny = [\"**/*.lic\"]\n[limits]\nworkspace = \"2KiB\"\n[destinations]\nrepositories = [\"127.0.0.1:1/acme/*\"]\ntag = \"^v[0-9]+$\"\noverwrite = \"always\"\n",
    );
    let out = sb
        .stowage()
        .args([
            "build",
            "--policy",
            "policy.toml",
            "-o",
            "127.0.0.1:1/other/app:latest",
            "-o",
            "oci:out",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "/home/user/work/matlab.lic",
        "files.deny, policy line 2",
        "limits.workspace, policy line 4",
        "destinations.repositories, policy line 6",
        "destinations.tag, policy line 7",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from: {stderr}");
    }
    assert!(!sb.join("out").exists(), "nothing is written");
}

#[test]
fn a_tag_another_journal_pushed_is_not_replaced_under_own() {
    let Some(registry) = TestRegistry::anonymous() else {
        return;
    };
    let reference = registry.reference("acme/app:v1");
    let ours = Sandbox::new();
    let theirs = Sandbox::new();
    for sb in [&ours, &theirs] {
        let library = sb.mkdir("lib");
        fs::write(library.join("app.py"), format!("print({:?})\n", sb.path())).unwrap();
        spec(sb, &library, None, &reference);
        policy(sb, "[destinations]\noverwrite = \"own\"\n");
    }
    let build = |sb: &Sandbox| {
        sb.stowage()
            .args(["build", "--policy", "policy.toml"])
            .output()
            .unwrap()
    };
    assert!(build(&theirs).status.success());
    let refused = build(&ours);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("destinations.overwrite"), "{stderr}");
    assert!(
        stderr.contains("which this journal did not export"),
        "{stderr}"
    );
    // Their own tag, theirs to replace; after `exports delete`, free again.
    fs::write(theirs.join("lib/app.py"), "print('v2')\n").unwrap();
    assert!(build(&theirs).status.success());
    let id = export_records(&theirs).last().unwrap()["id"].to_string();
    run_ok(theirs.stowage().args(["exports", "delete", &id, "--yes"]));
    let again = build(&ours);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // `--no-overwrite` without a policy: never.
    let never = ours
        .stowage()
        .args(["build", "--no-overwrite"])
        .output()
        .unwrap();
    assert_eq!(never.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&never.stderr).contains("it holds export"));
}

#[test]
fn an_admitted_build_names_its_policy_and_push_judges_destinations() {
    let sb = Sandbox::new();
    let library = sb.mkdir("lib");
    fs::write(library.join("app.py"), "print('hi')\n").unwrap();
    spec(&sb, &library, None, "oci:out:v1");
    let text = "[destinations]\nrepositories = [\"127.0.0.1:1/acme/*\"]\n";
    let policy_file = policy(&sb, text);
    run_ok(
        sb.stowage()
            .args(["build", "--attest", "provenance", "--policy", "policy.toml"]),
    );
    let digest = sha256_hex(&fs::read(&policy_file).unwrap());
    let provenance = run_ok(sb.stowage().args(["inspect", "oci:out:v1", "--provenance"]));
    let provenance: Value = serde_json::from_str(&provenance).unwrap();
    let dependencies = provenance["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let named = dependencies
        .iter()
        .find(|d| d["name"] == "policy")
        .expect("a policy dependency");
    assert_eq!(named["digest"]["sha256"], digest.as_str());
    let notes = export_records(&sb)[0]["notes"].to_string();
    assert!(
        notes.contains(&format!("policy: sha256:{digest} from /")),
        "{notes}"
    );
    // A push to a repository the policy does not list is refused before any connection.
    let out = sb
        .stowage()
        .args([
            "push",
            "oci:out:v1",
            "127.0.0.1:1/other/app:v1",
            "--policy",
            "policy.toml",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("destinations.repositories, policy line 2"),
        "{stderr}"
    );
    let records = export_records(&sb);
    assert!(
        records[1]["notes"]
            .to_string()
            .contains("policy violation: 127.0.0.1:1/other/app:v1")
    );
}
