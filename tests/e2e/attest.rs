//! Attestations in BuildKit's storage layout: an attested build pushed to a
//! real `docker-registry` is read back by skopeo and checked field by field
//! with jq, its SPDX predicate validated by pyspdxtools; docker and podman
//! pull and run it, and load its docker-archive; the index is reproducible
//! (a fresh store builds the same digest), the platform manifest is the one a
//! plain build writes, and `copy` and `archive` keep every digest.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::rig::registry::*;
use crate::rig::*;

const SPDX: &str = "https://spdx.dev/Document";
const SLSA: &str = "https://slsa.dev/provenance/v1";

/// The sample app with one Python package in its library, so the SBOM lists something.
fn attested_app(root: &Path, image: &str, in_spec: bool) -> PathBuf {
    let spec = write_app(root, image);
    let dist = root.join("library/demo_pkg-1.2.3.dist-info");
    write_file(
        &dist.join("METADATA"),
        "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.2.3\nLicense-Expression: MIT\n",
        0o644,
    );
    write_file(
        &dist.join("RECORD"),
        "pkg/__init__.py,,\ndemo_pkg-1.2.3.dist-info/METADATA,,\n",
        0o644,
    );
    if in_spec {
        let text = fs::read_to_string(&spec).unwrap();
        let text = text.replacen(
            "[labels]",
            "[attest]\nsbom = true\nprovenance = true\n\n[labels]",
            1,
        );
        fs::write(&spec, text).unwrap();
    }
    label_uniquely(&spec, image);
    spec
}

/// `jq -e FILTER FILE` must succeed: the filter is true of the file.
fn jq(file: &Path, filter: &str) {
    let out = tool("jq").arg("-e").arg(filter).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "jq -e '{filter}' is not true of {}: {}{}\n{}",
        file.display(),
        show(&out.stdout),
        show(&out.stderr),
        fs::read_to_string(file).unwrap_or_default()
    );
}

fn write_json(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// skopeo's copy of every manifest of `repo_tag` into an OCI layout under `dir`.
fn skopeo_copy_all(reg: &TestRegistry, repo_tag: &str, dir: &Path) -> Layout {
    let mut cmd = skopeo();
    cmd.args(["copy", "--all", "--src-tls-verify=false"])
        .arg(reg.docker_ref(repo_tag))
        .arg(format!("oci:{}:copy", dir.display()));
    run_ok(&mut cmd);
    Layout::open(dir)
}

/// An attested build pushed to a registry, and what skopeo read back.
struct Pushed {
    sb: Sandbox,
    reg: TestRegistry,
    dest: String,
    spec: PathBuf,
    printed: Printed,
    raw_index: Vec<u8>,
    image_digest: String,
    attestation_digest: String,
    /// The SBOM statement's digest, then the provenance statement's.
    statements: Vec<String>,
    spdx: Value,
    provenance_bytes: Vec<u8>,
}

const ATTEST: [&str; 4] = ["--attest", "sbom", "--attest", "provenance"];

#[test]
fn attested_push_is_buildkits_layout_and_keeps_its_digests() {
    if !require_tools(&["skopeo", "jq"]) || !crate::rig::libraries::require_pytools() {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let dest = reg.reference("attest/app:1");
    let spec = attested_app(&sb.join("app"), &dest, false);
    let printed = build_to(&sb, &[&reg.host], &spec, &[&dest], &ATTEST);
    let (image_digest, attestation_digest) = check_index(&sb, &reg, &printed);
    let mut pushed = Pushed {
        sb,
        reg,
        dest,
        spec,
        printed,
        raw_index: Vec::new(),
        image_digest,
        attestation_digest,
        statements: Vec::new(),
        spdx: Value::Null,
        provenance_bytes: Vec::new(),
    };
    pushed.raw_index = pushed.reg.skopeo_inspect("attest/app:1", &["--raw"]);
    check_statements(&mut pushed);
    check_inspect(&pushed);
    check_reproducible(&pushed);
    check_copies(&pushed);
}

/// The index's fields, as skopeo reads it; returns the image's and the attestation manifest's digests.
fn check_index(sb: &Sandbox, reg: &TestRegistry, printed: &Printed) -> (String, String) {
    // The index, as skopeo reads it from the registry.
    let raw_index = reg.skopeo_inspect("attest/app:1", &["--raw"]);
    assert_eq!(
        sha256_digest(&raw_index),
        printed.digest,
        "the index digest"
    );
    let index = write_json(sb.path(), "index.json", &raw_index);
    let arch = host_arch();
    jq(
        &index,
        r#".schemaVersion == 2 and .mediaType == "application/vnd.oci.image.index.v1+json""#,
    );
    jq(&index, ".manifests | length == 2");
    jq(
        &index,
        &format!(
            r#".manifests[0] | .mediaType == "application/vnd.oci.image.manifest.v1+json" and .platform == {{"architecture":"{arch}","os":"linux"}} and (has("annotations") | not)"#
        ),
    );
    jq(
        &index,
        r#".manifests[1] | .mediaType == "application/vnd.oci.image.manifest.v1+json" and .platform == {"architecture":"unknown","os":"unknown"}"#,
    );
    jq(
        &index,
        r#".manifests[1].annotations["vnd.docker.reference.type"] == "attestation-manifest""#,
    );
    jq(
        &index,
        r#".manifests[1].annotations["vnd.docker.reference.digest"] == .manifests[0].digest"#,
    );
    let parsed: Value = serde_json::from_slice(&raw_index).unwrap();
    let image_digest = parsed["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let attestation_digest = parsed["manifests"][1]["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    (image_digest, attestation_digest)
}

/// The attestation manifest, its config and both statements, as skopeo copies them.
fn check_statements(p: &mut Pushed) {
    let (sb, reg) = (&p.sb, &p.reg);
    let (image_digest, attestation_digest) = (&p.image_digest, &p.attestation_digest);
    let printed = &p.printed;
    // Every manifest and blob, as skopeo copies them.
    let layout = skopeo_copy_all(reg, "attest/app:1", &sb.join("skopeo-layout"));
    assert_eq!(layout.descriptor("copy")["digest"], printed.digest.as_str());
    let attestation = layout.image_at(attestation_digest);
    let manifest = write_json(sb.path(), "attestation.json", &attestation.manifest_bytes);
    jq(
        &manifest,
        r#".schemaVersion == 2 and .mediaType == "application/vnd.oci.image.manifest.v1+json" and (has("subject") | not)"#,
    );
    jq(
        &manifest,
        r#".config.mediaType == "application/vnd.oci.image.config.v1+json""#,
    );
    jq(
        &manifest,
        &format!(
            r#"[.layers[] | .mediaType] == ["application/vnd.in-toto+json", "application/vnd.in-toto+json"] and [.layers[] | .annotations["in-toto.io/predicate-type"]] == ["{SPDX}", "{SLSA}"]"#
        ),
    );
    let config = write_json(
        sb.path(),
        "attestation-config.json",
        &attestation.config_bytes,
    );
    jq(
        &config,
        r#".os == "unknown" and .architecture == "unknown" and .rootfs.type == "layers""#,
    );
    let layer_digests: Vec<String> = attestation
        .layers()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        attestation.diff_ids(),
        layer_digests,
        "diff_ids are the statements' digests"
    );

    // Named by the image's digest, never by where it is pushed.
    let hex = image_digest.strip_prefix("sha256:").unwrap();
    let subject = format!(
        r#"._type == "https://in-toto.io/Statement/v1" and (.subject | length == 1) and .subject[0].digest.sha256 == "{hex}" and (.subject[0].name | startswith("pkg:oci/stowage-image@sha256%3A{hex}?platform="))"#,
    );
    let sbom_bytes = layout.blob(&layer_digests[0]);
    let sbom = write_json(sb.path(), "sbom-statement.json", &sbom_bytes);
    jq(&sbom, &subject);
    jq(
        &sbom,
        &format!(r#".predicateType == "{SPDX}" and .predicate.spdxVersion == "SPDX-2.3""#),
    );
    jq(
        &sbom,
        r#"[.predicate.packages[] | select(.name == "demo-pkg" and .versionInfo == "1.2.3")] | length == 1"#,
    );
    jq(
        &sbom,
        &format!(
            r#".predicate.name == "stowage-image" and .predicate.documentNamespace == "https://stowage.dev/spdx/stowage-image/sha256-{hex}""#
        ),
    );
    let destination = reg.reference("attest/app");
    assert!(
        !show(&sbom_bytes).contains(&destination),
        "the SBOM names {destination}"
    );
    let spdx: Value = serde_json::from_slice::<Value>(&sbom_bytes).unwrap()["predicate"].clone();
    let spdx_file = write_json(
        sb.path(),
        "predicate.spdx.json",
        spdx.to_string().as_bytes(),
    );
    let checked = std::process::Command::new(crate::rig::libraries::pyspdxtools())
        .arg("-i")
        .arg(&spdx_file)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "pyspdxtools: {}{}",
        show(&checked.stdout),
        show(&checked.stderr)
    );

    let provenance_bytes = layout.blob(&layer_digests[1]);
    check_provenance(p, &provenance_bytes, &subject);
    p.statements = layer_digests;
    p.spdx = spdx;
    p.provenance_bytes = provenance_bytes;
}

/// The provenance statement names the image and has every field the issue lists.
fn check_provenance(p: &Pushed, provenance_bytes: &[u8], subject: &str) {
    let (spec, arch) = (&p.spec, host_arch());
    let provenance = write_json(p.sb.path(), "provenance-statement.json", provenance_bytes);
    jq(&provenance, subject);
    jq(&provenance, &format!(r#".predicateType == "{SLSA}""#));
    let version = env!("CARGO_PKG_VERSION");
    jq(
        &provenance,
        &format!(r#".predicate.runDetails.builder.id | endswith("@v{version}")"#),
    );
    jq(
        &provenance,
        r#".predicate.buildDefinition.buildType | startswith("https://")"#,
    );
    let spec_hex = sha256_hex(&fs::read(spec).unwrap());
    jq(
        &provenance,
        &format!(
            r#".predicate.buildDefinition.externalParameters.spec.digest.sha256 == "{spec_hex}""#
        ),
    );
    jq(
        &provenance,
        &format!(
            r#".predicate.buildDefinition.resolvedDependencies | any(.name == "spec" and .digest.sha256 == "{spec_hex}")"#
        ),
    );
    jq(
        &provenance,
        r#".predicate.buildDefinition.resolvedDependencies | any(.name == "library" and .uri == "file:library" and .annotations.target == "/opt/app")"#,
    );
    jq(
        &provenance,
        &format!(r#".predicate.buildDefinition.externalParameters.platform == "linux/{arch}""#),
    );
    // The times come from SOURCE_DATE_EPOCH (unset: the epoch), never from the clock.
    jq(
        &provenance,
        r#".predicate.runDetails.metadata.startedOn == "1970-01-01T00:00:00Z" and .predicate.runDetails.metadata.finishedOn == "1970-01-01T00:00:00Z""#,
    );
    // The spec's [env] values never reach the provenance, nor the destination.
    assert!(!show(provenance_bytes).contains("hello-from-env"));
    let destination = p.reg.reference("attest/app");
    assert!(!show(provenance_bytes).contains(&destination));
}

/// stowage lists the attestations and prints each predicate.
fn check_inspect(p: &Pushed) {
    let (sb, reg, dest) = (&p.sb, &p.reg, &p.dest);
    let (attestation_digest, layer_digests) = (&p.attestation_digest, &p.statements);
    let (image_digest, spdx, provenance_bytes) = (&p.image_digest, &p.spdx, &p.provenance_bytes);
    let insecure = || stowage_insecure(sb, &[&reg.host]);
    let listing = run_ok(insecure().args(["inspect", dest]));
    for needle in [
        attestation_digest.as_str(),
        &layer_digests[0],
        &layer_digests[1],
        SPDX,
        SLSA,
    ] {
        assert!(
            listing.contains(needle),
            "inspect should list {needle}: {listing}"
        );
    }
    let listed: Value =
        serde_json::from_str(&run_ok(insecure().args(["--json", "inspect", dest]))).unwrap();
    assert_eq!(
        listed["attestations"][0]["describes"],
        image_digest.as_str()
    );
    assert_eq!(
        listed["attestations"][0]["statements"][1]["predicate_type"],
        SLSA
    );
    let printed_sbom: Value =
        serde_json::from_str(&run_ok(insecure().args(["inspect", "--sbom", dest]))).unwrap();
    assert_eq!(
        &printed_sbom, spdx,
        "inspect --sbom prints the SPDX predicate"
    );
    let printed_provenance: Value =
        serde_json::from_str(&run_ok(insecure().args(["inspect", "--provenance", dest]))).unwrap();
    assert_eq!(
        printed_provenance,
        serde_json::from_slice::<Value>(provenance_bytes).unwrap()["predicate"]
    );
}

/// Without --attest the image is the platform manifest; a fresh store builds the same index.
fn check_reproducible(p: &Pushed) {
    let (sb, reg, spec, dest) = (&p.sb, &p.reg, &p.spec, &p.dest);
    let (image_digest, printed) = (&p.image_digest, &p.printed);
    // Without --attest, the image is byte for byte the platform manifest above.
    let plain = build_to(
        sb,
        &[&reg.host],
        spec,
        &[&reg.reference("attest/app:plain")],
        &[],
    );
    assert_eq!(&plain.digest, image_digest, "a plain build's digest");
    let plain_raw = reg.skopeo_inspect("attest/app:plain", &["--raw"]);
    assert_eq!(&sha256_digest(&plain_raw), image_digest);

    // A fresh store builds the same index, pushed to another tag and to
    // another repository: nothing in it depends on where it goes.
    let (other_tag, other_repo) = ("attest/app:2", "attest/elsewhere:7");
    let mut fresh = stowage_with_cache(&sb.join("fresh-cache"));
    fresh
        .args(["--insecure-registry", &reg.host, "build", "-f"])
        .arg(spec);
    fresh
        .args(["-o", &reg.reference(other_tag)])
        .args(["-o", &reg.reference(other_repo)])
        .args(ATTEST);
    assert_eq!(
        parse_printed(&run_ok(&mut fresh)).digest,
        printed.digest,
        "fresh store, pushed to {other_tag} and {other_repo} (first pushed to {dest})"
    );
    for pushed in [other_tag, other_repo] {
        assert_eq!(reg.skopeo_digest(pushed), printed.digest, "{pushed}");
    }
}

/// copy to oci: and back keeps every digest; archive keeps the attestations.
fn check_copies(p: &Pushed) {
    let (sb, reg, dest, printed) = (&p.sb, &p.reg, &p.dest, &p.printed);
    let insecure = || stowage_insecure(sb, &[&reg.host]);
    let (raw_index, layer_digests) = (&p.raw_index, &p.statements);
    let (image_digest, attestation_digest) = (&p.image_digest, &p.attestation_digest);
    let provenance_bytes = &p.provenance_bytes;
    let oci = format!("oci:{}:kept", sb.join("copied").display());
    run_ok(insecure().args(["copy", dest, &oci]));
    let copied = Layout::open(sb.join("copied"));
    assert_eq!(copied.descriptor("kept")["digest"], printed.digest.as_str());
    assert_eq!(&copied.blob(&printed.digest), raw_index);
    for digest in layer_digests
        .iter()
        .chain([attestation_digest, image_digest])
    {
        copied.blob(digest);
    }
    let back = reg.reference("attest/back:1");
    run_ok(insecure().args(["copy", &oci, &back]));
    assert_eq!(reg.skopeo_digest("attest/back:1"), printed.digest);
    let back_layout = skopeo_copy_all(reg, "attest/back:1", &sb.join("back-layout"));
    assert_eq!(&back_layout.blob(&layer_digests[1]), provenance_bytes);

    let archive = sb.join("archived.tar");
    run_ok(insecure().args(["archive", dest, "-o"]).arg(&archive));
    let members = DockerArchive::open(&archive);
    let archived_index: Value = serde_json::from_slice(members.member("index.json")).unwrap();
    assert_eq!(
        archived_index["manifests"][0]["digest"],
        printed.digest.as_str()
    );
    members.member(&format!(
        "blobs/sha256/{}",
        layer_digests[0].strip_prefix("sha256:").unwrap()
    ));
}

#[test]
fn attested_tag_pulls_and_runs_in_docker_and_podman() {
    if !docker_ready() || !podman_ready() {
        return;
    }
    let Some(reg) = TestRegistry::anonymous() else {
        return;
    };
    let sb = Sandbox::new();
    let dest = reg.reference(&format!("attest/run:{}", unique("t")));
    // Here the spec's [attest] asks for them.
    let spec = attested_app(&sb.join("app"), &dest, true);
    let printed = build_to(&sb, &[&reg.host], &spec, &[&dest], &[]);
    let raw: Value =
        serde_json::from_slice(&reg.skopeo_inspect(dest.split_once('/').unwrap().1, &["--raw"]))
            .unwrap();
    assert_eq!(raw["manifests"][1]["platform"]["os"], "unknown", "{raw}");

    {
        let _cleanup = DockerImage(dest.clone());
        run_ok(docker().args(["pull", &dest]));
        let stdout = run_ok(docker().args(["run", "--rm", "--network", "host", &dest]));
        assert_app_output(&stdout);
    }
    let _cleanup = PodmanImage(dest.clone());
    run_ok(podman().args(["pull", "--tls-verify=false", &dest]));
    let stdout = run_ok(podman().args(["run", "--rm", "--network", "host", &dest]));
    assert_app_output(&stdout);
    let by_digest = format!("{}@{}", dest.rsplit_once(':').unwrap().0, printed.digest);
    let _by_digest = PodmanImage(by_digest.clone());
    run_ok(podman().args(["pull", "--tls-verify=false", &by_digest]));
}

#[test]
fn attested_docker_archive_loads_in_docker_and_podman() {
    if !docker_ready() || !podman_ready() {
        return;
    }
    let sb = Sandbox::new();
    let image = unique_ref("attest-archive");
    let spec = attested_app(&sb.join("app"), &image, false);
    let archive = sb.join("app.tar");
    let oci_archive = sb.join("app.oci.tar");
    let printed = parse_printed(&run_ok(sb.stowage().args(["build", "-f"]).arg(&spec).args(
        [
            "-o",
            &format!("docker-archive:{}", archive.display()),
            "-o",
            &format!("oci-archive:{}:attested", oci_archive.display()),
            "--attest",
            "sbom",
            "--attest",
            "provenance",
        ],
    )));
    // The oci-archive holds the same index, as skopeo reads it.
    let raw = run_ok(skopeo().args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}:attested", oci_archive.display()),
    ]));
    assert_eq!(
        sha256_digest(raw.as_bytes()),
        printed.digest,
        "oci-archive index"
    );
    let members = DockerArchive::open(&archive);
    let index: Value = serde_json::from_slice(members.member("index.json")).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], printed.digest.as_str());
    let attested: Value = serde_json::from_slice(members.member(&format!(
        "blobs/sha256/{}",
        printed.digest.strip_prefix("sha256:").unwrap()
    )))
    .unwrap();
    let image_digest = attested["manifests"][0]["digest"].as_str().unwrap();
    // manifest.json names the runnable image only.
    let manifest = members.manifest();
    assert_eq!(manifest.as_array().unwrap().len(), 1);
    let runnable: Value = serde_json::from_slice(members.member(&format!(
        "blobs/sha256/{}",
        image_digest.strip_prefix("sha256:").unwrap()
    )))
    .unwrap();
    assert_eq!(
        manifest[0]["Config"],
        format!(
            "blobs/sha256/{}",
            runnable["config"]["digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap()
        )
    );
    assert_eq!(members.config()["os"], "linux");

    // --platform on the archive picks the runnable image, never the attestation manifest.
    let source = format!("docker-archive:{}", archive.display());
    let picked = run_ok(sb.stowage().args([
        "inspect",
        "--raw",
        "manifest",
        "--platform",
        &format!("linux/{}", host_arch()),
        &source,
    ]));
    assert_eq!(sha256_digest(picked.as_bytes()), image_digest);
    // The export record notes them.
    let exports: Value =
        serde_json::from_str(&run_ok(sb.stowage().args(["--json", "exports"]))).unwrap();
    let notes = exports[0]["notes"].to_string();
    assert!(
        notes.contains(&format!("attestations: {SPDX}, {SLSA}")) && notes.contains(image_digest),
        "{exports}"
    );
    assert_eq!(exports[0]["digest"], printed.digest.as_str());
    let sbom: Value =
        serde_json::from_str(&run_ok(sb.stowage().args(["inspect", "--sbom", &source]))).unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");

    {
        let _cleanup = DockerImage(image.clone());
        let loaded = run_ok(docker().args(["load", "-i"]).arg(&archive));
        assert!(
            loaded.contains(&format!("Loaded image: {image}")),
            "docker load: {loaded}"
        );
        let stdout = run_ok(docker().args(["run", "--rm", "--network", "host", &image]));
        assert_app_output(&stdout);
    }
    let _cleanup = PodmanImage(image.clone());
    let loaded = run_ok(podman().args(["load", "-i"]).arg(&archive));
    assert!(loaded.contains(&image), "podman load: {loaded}");
    let stdout = run_ok(podman().args(["run", "--rm", "--network", "host", &image]));
    assert_app_output(&stdout);
}

#[test]
fn attestations_refuse_docker_format_and_bad_spec_values() {
    let sb = Sandbox::new();
    let spec = attested_app(&sb.join("app"), "localhost/stowage-e2e/attest:1", false);
    let out = sb
        .stowage()
        .args([
            "build",
            "--dry-run",
            "--format",
            "docker",
            "--attest",
            "sbom",
            "-f",
        ])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("OCI"), "{}", stderr_of(&out));

    let text = fs::read_to_string(&spec).unwrap();
    fs::write(
        &spec,
        text.replacen("[labels]", "[attest]\nsbom = \"yes\"\n\n[labels]", 1),
    )
    .unwrap();
    let out = sb
        .stowage()
        .args(["build", "--dry-run", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("stowage.toml:"),
        "names the file and position: {stderr}"
    );
    assert!(stderr.contains("true or false"), "{stderr}");
}

#[test]
fn an_attested_image_of_another_platform_inspects_as_a_single_image_does() {
    let sb = Sandbox::new();
    let spec = attested_app(&sb.join("app"), "localhost/stowage-e2e/attest-arm:1", true);
    let other = if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let layout = sb.join("layout");
    run_ok(
        sb.stowage()
            .args(["build", "--no-start-check", "-f"])
            .arg(&spec)
            .args([
                "--platform",
                &format!("linux/{other}"),
                "-o",
                &format!("oci:{}", layout.display()),
            ]),
    );
    let source = format!("oci:{}", layout.display());
    // No --platform: the one image, whatever its platform, as for an image without attestations.
    let config: Value = serde_json::from_str(&run_ok(
        sb.stowage().args(["inspect", "--raw", "config", &source]),
    ))
    .unwrap();
    assert_eq!(config["architecture"], other);
    let provenance: Value = serde_json::from_str(&run_ok(sb.stowage().args([
        "inspect",
        "--provenance",
        &source,
    ])))
    .unwrap();
    assert_eq!(
        provenance["buildDefinition"]["externalParameters"]["platform"],
        format!("linux/{other}")
    );
    // `run-command` gives the line that runs it, from its docker-archive too,
    // though the host's platform is another.
    let archive = sb.join("attest-arm.tar");
    run_ok(sb.stowage().args(["copy", &source]).arg(format!(
        "docker-archive:{}:localhost/stowage-e2e/attest-arm:1",
        archive.display()
    )));
    let line = run_ok(sb.stowage().args([
        "run-command",
        &format!("docker-archive:{}", archive.display()),
    ]));
    assert!(
        line.starts_with("docker run -p 8888:8888 ") && line.trim_end().ends_with("attest-arm:1"),
        "{line}"
    );
    // A platform it does not have is refused, naming the one it has.
    let out = sb
        .stowage()
        .args(["inspect", "--sbom", "--platform", "linux/s390x", &source])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains(&format!("linux/{other}")),
        "{}",
        stderr_of(&out)
    );
}
