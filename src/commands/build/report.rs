//! What a build reports in JSON — `--metadata-file` and `build --json` (`BuildMetadata`), `--dry-run --json` (`DryRunReport`) — and the report files it writes.
//!
//! The field docs below are the documentation of these keys. A key is never
//! renamed or dropped: scripts read them.

use std::path::Path;

use serde::Serialize;

use super::dry_run::DryRun;
use super::outcome::BuildOutcome;
use super::sbom::{SbomRequest, sbom_input};
use crate::attest::render_sbom;
use crate::check::Checked;
use crate::commands::json_text;
use crate::digest::Digest;
use crate::error::Error;
use crate::image::attestation::PREDICATE_TYPE;
use crate::layer::{GroupKey, LayerPart, LayerPlan};
use crate::plan::BuildPlan;
use crate::transport;

/// `--metadata-file`'s JSON, which `stowage build --json` prints too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildMetadata {
    /// The line `stowage build` prints on stdout: the first registry
    /// destination as `REPO@sha256:…`, else the first local output with the
    /// tag or name it was written under (`oci:out:1@sha256:…`).
    pub reference: String,
    /// What a tag of the export names: the attested index's digest with
    /// `--attest`, else the image manifest's.
    pub digest: Digest,
    /// The media type of what `digest` names: an OCI index, or an OCI or Docker schema 2 manifest.
    pub media_type: String,
    /// The image manifest's digest (the same as `digest` without `--attest`).
    pub manifest_digest: Digest,
    /// The image config's digest.
    pub config_digest: Digest,
    /// Every destination written, as given (`-o`, else the spec's `image`).
    pub references: Vec<String>,
    /// The layers the build added, in the image's order (the base's are not listed).
    pub layers: Vec<LayerMetadata>,
    /// With `--attest`: each attestation manifest in the index; null without.
    pub attestations: Option<Vec<AttestationMetadata>>,
    /// The library's install prefix rewritten, and every file it changed; null when nothing was rewritten.
    pub relocation: Option<RelocationReport>,
    /// Secret-scan findings in library files whose bytes match their
    /// package's recorded hash (notes, not stops), as printed on stderr.
    pub published_findings: Vec<String>,
}

/// One layer the build added, in `--metadata-file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerMetadata {
    /// The layer's name in the plan: `library` (or `library-NofM`), `files`, `workspace`.
    pub name: String,
    /// The blob's digest (compressed), as the manifest lists it.
    pub digest: Digest,
    /// The digest of the uncompressed tar, as the config's `rootfs.diff_ids` lists it.
    pub diff_id: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// Regular files in the layer.
    pub files: u64,
    /// Every entry of the tar: files, folders, links.
    pub entries: u64,
    /// Taken from the layer cache: nothing was read or compressed.
    pub cached: bool,
    /// Its blob came from the content cache: the layer was read and hashed, not compressed.
    pub reused: bool,
    /// The folders and files on disk the layer was made from.
    pub source: Vec<String>,
    /// What a library layer holds (empty for other layers).
    pub packages: Vec<PartReport>,
}

/// One attestation manifest of an attested index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttestationMetadata {
    /// The attestation manifest's digest.
    pub digest: Digest,
    /// The predicate type of each in-toto statement it holds
    /// (`https://spdx.dev/Document`, `https://slsa.dev/provenance/v1`).
    pub predicate_types: Vec<String>,
}

/// The library's prefix rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelocationReport {
    /// The prefix the library was installed at.
    pub from: String,
    /// The prefix it is written to (the library's target).
    pub to: String,
    /// Every entry rewritten, sorted by path.
    pub files: Vec<RelocatedFile>,
}

/// One entry the relocation rewrites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelocatedFile {
    /// The path in the image.
    pub path: String,
    /// How: `text` (every occurrence), `shebang` (the first line), `binary`
    /// (NUL-padded strings) or `symlink` (the link's target).
    pub kind: &'static str,
}

/// One group of a library layer: a package, a folder, or the files no package lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PartReport {
    /// A package of the library's inventory.
    Package {
        /// The package's name.
        name: String,
        /// Its version.
        version: String,
        /// Where it comes from: `pypi`, `conda`, `cran`, `npm`.
        ecosystem: &'static str,
        /// Its package URL.
        purl: String,
        /// Its license as its metadata states it (an SPDX expression where
        /// the metadata means one); null when none is stated.
        license: Option<String>,
        /// The license concluded from its license files (an SPDX
        /// expression); null when not needed or not found.
        license_concluded: Option<String>,
        /// Regular files of the package in this layer.
        files: u64,
        /// Bytes of their content.
        bytes: u64,
    },
    /// A package the inventory no longer lists, by its label.
    Unlisted {
        /// `NAME VERSION`.
        name: String,
        /// Regular files in this layer.
        files: u64,
        /// Bytes of their content.
        bytes: u64,
    },
    /// A folder (or top-level file) of the library, when it is not split by package.
    Folder {
        /// Its path relative to the library's root.
        folder: String,
        /// Regular files under it.
        files: u64,
        /// Bytes of their content.
        bytes: u64,
    },
    /// The files no package lists.
    Unowned {
        /// Always true.
        unowned: bool,
        /// Regular files.
        files: u64,
        /// Bytes of their content.
        bytes: u64,
    },
}

/// `--dry-run --json`: the plan, what the checks that read no file contents found, and what they did not check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunReport {
    /// The base as written (`scratch`, `docker://…`, `oci:…`).
    pub base: String,
    /// The platform the image is for (`linux/amd64`).
    pub platform: String,
    /// The layers the build would add, in order.
    pub layers: Vec<PlannedLayer>,
    /// The library's prefix rewrite and every file it would change; null when there is none.
    pub relocation: Option<RelocationReport>,
    /// The attestations the build would attach.
    pub attest: AttestReport,
    /// Where the image would be written.
    pub destinations: Vec<String>,
    /// What the start check found; null when it was off (`--no-start-check`).
    pub start_check: Option<StartCheckReport>,
    /// By-name secret-scan findings that `--allow-secret` or `[secrets] allow` let through.
    pub allowed_findings: Vec<String>,
    /// By-name findings in library files whose bytes match their package's recorded hash.
    pub published_findings: Vec<String>,
    /// The checks that ran, in words.
    pub checked: Vec<&'static str>,
    /// What a build checks that this dry run did not, in words.
    pub not_checked: Vec<&'static str>,
}

/// One layer of the plan, in `--dry-run --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedLayer {
    /// The layer's name: `library` (or `library-NofM`), `files`, `workspace`.
    pub name: String,
    /// The folders and files on disk it is made from.
    pub sources: Vec<String>,
    /// Every entry the tar will hold: files, folders, links.
    pub entries: u64,
    /// Regular files.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// What a library layer holds (empty for other layers).
    pub packages: Vec<PartReport>,
}

/// Which attestations a build attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AttestReport {
    /// The SPDX SBOM.
    pub sbom: bool,
    /// SLSA provenance v1.
    pub provenance: bool,
}

/// What the start check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result")]
pub enum StartCheckReport {
    /// `"result": "no command"`: no entrypoint and no command, nothing to check.
    #[serde(rename = "no command")]
    NoCommand,
    /// `"result": "starts"`: the program resolved.
    #[serde(rename = "starts")]
    Starts {
        /// The path it resolved to, when it was found; null when it could not be looked up.
        program: Option<String>,
        /// What could not be checked because the base was not read.
        unchecked: Vec<String>,
    },
}

impl BuildMetadata {
    /// The metadata of a finished build of `plan`.
    pub fn new(plan: &BuildPlan, outcome: &BuildOutcome) -> BuildMetadata {
        let built = &outcome.built;
        let layers = built
            .layers
            .iter()
            .zip(&plan.layers)
            .map(|(layer, layer_plan)| LayerMetadata {
                name: layer.name.clone(),
                digest: layer.digest.clone(),
                diff_id: layer.diff_id.clone(),
                size: layer.size,
                files: layer.file_count,
                entries: layer.entry_count,
                cached: layer.cached,
                reused: layer.reused,
                source: source_texts(layer_plan),
                packages: parts(plan, layer_plan),
            })
            .collect();
        BuildMetadata {
            reference: outcome.reference_line(plan),
            digest: outcome.digest().clone(),
            media_type: outcome.artifact.descriptor().media_type,
            manifest_digest: built.image.digest().clone(),
            config_digest: built.image.config_descriptor().digest.clone(),
            references: outcome
                .written
                .iter()
                .map(|w| w.destination.clone())
                .collect(),
            layers,
            attestations: attestations(outcome),
            relocation: relocation(plan),
            published_findings: texts(&built.findings.published),
        }
    }
}

impl DryRunReport {
    /// The report of a dry run.
    pub fn new(dry: &DryRun) -> DryRunReport {
        let plan = &dry.plan;
        DryRunReport {
            base: plan.base.to_string(),
            platform: plan.platform.to_string(),
            layers: plan
                .layers
                .iter()
                .map(|l| PlannedLayer {
                    name: l.name.clone(),
                    sources: source_texts(l),
                    entries: l.entry_count,
                    files: l.file_count,
                    bytes: l.content_bytes,
                    packages: parts(plan, l),
                })
                .collect(),
            relocation: relocation(plan),
            attest: AttestReport {
                sbom: plan.attest.sbom,
                provenance: plan.attest.provenance,
            },
            destinations: plan.destinations.iter().map(ToString::to_string).collect(),
            start_check: dry.start_check.as_ref().map(StartCheckReport::of),
            allowed_findings: texts(&dry.findings.allowed),
            published_findings: texts(&dry.findings.published),
            checked: dry.checked.clone(),
            not_checked: dry.not_checked.clone(),
        }
    }
}

impl StartCheckReport {
    fn of(checked: &Checked) -> StartCheckReport {
        match checked {
            Checked::NoCommand => StartCheckReport::NoCommand,
            Checked::Starts { program, unchecked } => StartCheckReport::Starts {
                program: program.clone(),
                unchecked: unchecked.clone(),
            },
        }
    }
}

/// Each attestation manifest's digest and the predicate types of its statements; None without `--attest`.
fn attestations(outcome: &BuildOutcome) -> Option<Vec<AttestationMetadata>> {
    let index = outcome.attested()?;
    let image_digest = outcome.built.image.digest();
    let manifests = index
        .images
        .iter()
        .filter(|m| m.digest() != image_digest)
        .map(|m| AttestationMetadata {
            digest: m.digest().clone(),
            predicate_types: m
                .layers()
                .iter()
                .filter_map(|l| l.descriptor.annotations.get(PREDICATE_TYPE))
                .cloned()
                .collect(),
        })
        .collect();
    Some(manifests)
}

/// The library's prefix rewrite and every file it changes; None when there is none.
fn relocation(plan: &BuildPlan) -> Option<RelocationReport> {
    let relocation = plan.library.as_ref()?.relocation.as_ref()?;
    let files = plan
        .relocated_files()
        .into_iter()
        .map(|(path, kind)| RelocatedFile {
            path,
            kind: kind.name(),
        })
        .collect();
    Some(RelocationReport {
        from: relocation.from.clone(),
        to: relocation.to.clone(),
        files,
    })
}

/// What a library layer holds: each package or folder, with its bytes.
fn parts(plan: &BuildPlan, layer: &LayerPlan) -> Vec<PartReport> {
    layer
        .parts
        .iter()
        .map(|part| part_report(plan, part))
        .collect()
}

fn part_report(plan: &BuildPlan, part: &LayerPart) -> PartReport {
    let (files, bytes) = (part.files, part.bytes);
    match &part.key {
        GroupKey::Package(index) => match plan.inventory().packages.get(*index) {
            Some(p) => PartReport::Package {
                name: p.name.clone(),
                version: p.version.clone(),
                ecosystem: p.ecosystem.name(),
                purl: p.purl.clone(),
                license: p.license.clone(),
                license_concluded: p.license_concluded.clone(),
                files,
                bytes,
            },
            None => PartReport::Unlisted {
                name: part.label.clone(),
                files,
                bytes,
            },
        },
        GroupKey::Folder(path) => PartReport::Folder {
            folder: path.clone(),
            files,
            bytes,
        },
        GroupKey::Unowned => PartReport::Unowned {
            unowned: true,
            files,
            bytes,
        },
    }
}

fn source_texts(layer: &LayerPlan) -> Vec<String> {
    layer
        .sources
        .iter()
        .map(|s| s.display().to_string())
        .collect()
}

fn texts<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

/// Where `stowage build` writes its reports, each only when asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportFiles<'a> {
    /// `--sbom` and `--sbom-format`.
    pub sbom: Option<&'a SbomRequest>,
    /// `--digest-file`: the digest a tag names.
    pub digest_file: Option<&'a Path>,
    /// `--metadata-file`: the [`BuildMetadata`].
    pub metadata_file: Option<&'a Path>,
}

/// Writes `--sbom`, `--digest-file` and `--metadata-file`, each whole or not at all (I/O).
pub fn write_reports(
    files: &ReportFiles<'_>,
    plan: &BuildPlan,
    outcome: &BuildOutcome,
    metadata: &BuildMetadata,
) -> Result<(), Error> {
    if let Some(sbom) = files.sbom {
        let document = render_sbom(&sbom_input(plan, &outcome.built), sbom.format);
        transport::archive::write_atomic(&sbom.path, &document)?;
    }
    if let Some(path) = files.digest_file {
        transport::archive::write_atomic(path, outcome.digest().as_str().as_bytes())?;
    }
    if let Some(path) = files.metadata_file {
        let text = format!("{}\n", json_text(metadata));
        transport::archive::write_atomic(path, text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{
        AttestReport, AttestationMetadata, BuildMetadata, DryRunReport, LayerMetadata, PartReport,
        PlannedLayer, RelocatedFile, RelocationReport, StartCheckReport,
    };
    use crate::digest::Digest;

    fn keys(value: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    fn to_json<T: serde::Serialize>(value: &T) -> Value {
        serde_json::to_value(value).expect("serialisable")
    }

    fn relocation() -> RelocationReport {
        RelocationReport {
            from: "/build/venv".into(),
            to: "/opt/venv".into(),
            files: vec![RelocatedFile {
                path: "/opt/venv/bin/pip".into(),
                kind: "shebang",
            }],
        }
    }

    /// The keys scripts read from `--metadata-file` and `build --json`: renaming one breaks them.
    #[test]
    fn build_metadata_has_the_keys_it_always_had() {
        let digest = Digest::of(b"manifest");
        let metadata = BuildMetadata {
            reference: format!("oci:out:1@{digest}"),
            digest: digest.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifest_digest: digest.clone(),
            config_digest: Digest::of(b"config"),
            references: vec!["oci:out:1".into()],
            layers: vec![LayerMetadata {
                name: "workspace".into(),
                digest: Digest::of(b"blob"),
                diff_id: Digest::of(b"tar"),
                size: 10,
                files: 2,
                entries: 4,
                cached: false,
                reused: true,
                source: vec!["work".into()],
                packages: Vec::new(),
            }],
            attestations: None,
            relocation: Some(relocation()),
            published_findings: Vec::new(),
        };
        let value = to_json(&metadata);
        assert_eq!(
            keys(&value),
            [
                "attestations",
                "config_digest",
                "digest",
                "layers",
                "manifest_digest",
                "media_type",
                "published_findings",
                "reference",
                "references",
                "relocation",
            ]
        );
        assert_eq!(value["attestations"], Value::Null, "null without --attest");
        assert_eq!(value["digest"], json!(digest.to_string()));
        assert_eq!(
            keys(&value["layers"][0]),
            [
                "cached", "diff_id", "digest", "entries", "files", "name", "packages", "reused",
                "size", "source",
            ]
        );
        assert_eq!(
            value["relocation"],
            json!({"from": "/build/venv", "to": "/opt/venv",
                   "files": [{"path": "/opt/venv/bin/pip", "kind": "shebang"}]})
        );
        let attested = AttestationMetadata {
            digest: Digest::of(b"attestation"),
            predicate_types: vec!["https://spdx.dev/Document".into()],
        };
        assert_eq!(keys(&to_json(&attested)), ["digest", "predicate_types"]);
    }

    #[test]
    fn a_library_part_is_a_package_a_folder_or_the_unowned_files() {
        let package = PartReport::Package {
            name: "pip".into(),
            version: "23.2.1".into(),
            ecosystem: "pypi",
            purl: "pkg:pypi/pip@23.2.1".into(),
            license: Some("MIT".into()),
            license_concluded: None,
            files: 3,
            bytes: 30,
        };
        assert_eq!(
            to_json(&package),
            json!({"name": "pip", "version": "23.2.1", "ecosystem": "pypi",
                   "purl": "pkg:pypi/pip@23.2.1", "license": "MIT", "license_concluded": null,
                   "files": 3, "bytes": 30})
        );
        let unlisted = PartReport::Unlisted {
            name: "pip 23.2.1".into(),
            files: 1,
            bytes: 2,
        };
        assert_eq!(
            to_json(&unlisted),
            json!({"name": "pip 23.2.1", "files": 1, "bytes": 2})
        );
        let folder = PartReport::Folder {
            folder: "bin".into(),
            files: 1,
            bytes: 2,
        };
        assert_eq!(
            to_json(&folder),
            json!({"folder": "bin", "files": 1, "bytes": 2})
        );
        let unowned = PartReport::Unowned {
            unowned: true,
            files: 1,
            bytes: 2,
        };
        assert_eq!(
            to_json(&unowned),
            json!({"unowned": true, "files": 1, "bytes": 2})
        );
    }

    /// The keys of `--dry-run --json`, and the start check's two results.
    #[test]
    fn a_dry_run_report_has_the_keys_it_always_had() {
        let report = DryRunReport {
            base: "scratch".into(),
            platform: "linux/amd64".into(),
            layers: vec![PlannedLayer {
                name: "files".into(),
                sources: vec!["server".into()],
                entries: 3,
                files: 1,
                bytes: 5,
                packages: Vec::new(),
            }],
            relocation: None,
            attest: AttestReport {
                sbom: true,
                provenance: false,
            },
            destinations: vec!["oci:out".into()],
            start_check: Some(StartCheckReport::NoCommand),
            allowed_findings: Vec::new(),
            published_findings: Vec::new(),
            checked: vec!["start check"],
            not_checked: Vec::new(),
        };
        let value = to_json(&report);
        assert_eq!(
            keys(&value),
            [
                "allowed_findings",
                "attest",
                "base",
                "checked",
                "destinations",
                "layers",
                "not_checked",
                "platform",
                "published_findings",
                "relocation",
                "start_check",
            ]
        );
        assert_eq!(value["attest"], json!({"sbom": true, "provenance": false}));
        assert_eq!(value["relocation"], Value::Null);
        assert_eq!(
            keys(&value["layers"][0]),
            ["bytes", "entries", "files", "name", "packages", "sources"]
        );
        assert_eq!(value["start_check"], json!({"result": "no command"}));
        let starts = StartCheckReport::Starts {
            program: None,
            unchecked: vec!["the base's files".into()],
        };
        assert_eq!(
            to_json(&starts),
            json!({"result": "starts", "program": null, "unchecked": ["the base's files"]})
        );
    }
}
