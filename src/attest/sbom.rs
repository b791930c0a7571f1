//! SBOM documents of an image: SPDX 2.3 JSON and CycloneDX 1.6 JSON, byte-for-byte reproducible.

use std::collections::HashSet;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::reference::ImageRef;

mod cyclonedx;
mod license;
mod spdx;

/// Which SBOM document to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    Spdx,
    CycloneDx,
}

/// The base image an SBOM names; none for `scratch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomBase {
    /// As the spec wrote it, e.g. `docker.io/library/python:3.12-slim`.
    pub name: String,
    /// The base's manifest digest, when it is known.
    pub digest: Option<Digest>,
}

/// One package in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomPackage {
    /// `pypi`, `conda`, `cran`, `npm` (inventory's `Ecosystem::name`).
    pub ecosystem: String,
    pub name: String,
    pub version: String,
    /// The declared license: an SPDX expression, or free text.
    pub license: Option<String>,
    /// The license concluded from the package's license files (an SPDX expression).
    pub license_concluded: Option<String>,
    pub purl: String,
    /// The digest of the (compressed) layer blob that holds the package's files.
    pub layer: Digest,
    /// A JupyterLab extension shipped inside a Python package: that package's index in `packages`.
    pub shipped_by: Option<usize>,
}

/// Everything an SBOM says; every field is decided by the build's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomInput {
    /// The image's name, e.g. `docker.io/acme/notebook:1`, or `stowage-image` when it has none.
    pub image_name: String,
    /// The image's manifest digest: the document's namespace / serial derive from it.
    pub image_digest: Digest,
    pub base: Option<SbomBase>,
    /// The document's creation time (RFC 3339 from `SOURCE_DATE_EPOCH`, as the image config's `created`).
    pub created: String,
    /// `stowage-<version>`.
    pub tool: String,
    /// In the order the document lists them (the inventory's order).
    pub packages: Vec<SbomPackage>,
}

/// The document's JSON bytes (sorted keys, no insignificant whitespace, trailing newline).
pub fn render_sbom(input: &SbomInput, format: SbomFormat) -> Vec<u8> {
    let document = match format {
        SbomFormat::Spdx => spdx::document(input),
        SbomFormat::CycloneDx => cyclonedx::document(input),
    };
    to_bytes(&document)
}

/// Compact JSON: serde_json's map is ordered by key in this crate (no `preserve_order`).
fn to_bytes(document: &Value) -> Vec<u8> {
    let mut bytes = document.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// The package URL of an image: `pkg:oci/<name>@sha256%3A<hex>`, with
/// `?repository_url=<registry>/<repository>` when `image_name` names its
/// repository (has a `/`); a bare `alpine` or `stowage-image` does not say
/// where the image lives, so it gets no URL.
fn image_purl(image_name: &str, digest: &Digest) -> String {
    let parsed = ImageRef::parse(image_name).ok();
    let name = match &parsed {
        Some(r) => last_segment(&r.repository).to_string(),
        None => fallback_name(image_name),
    };
    let name = if name.is_empty() {
        "image".to_string()
    } else {
        name.to_ascii_lowercase()
    };
    let mut purl = format!(
        "pkg:oci/{}@sha256%3A{}",
        percent_encode(&name, ""),
        digest.hex()
    );
    if let Some(r) = parsed.filter(|_| image_name.contains('/')) {
        purl.push_str("?repository_url=");
        purl.push_str(&percent_encode(&r.name(), "/"));
    }
    purl
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The repository's last segment of a name that is not a valid reference: without digest or tag.
fn fallback_name(image_name: &str) -> String {
    let without_digest = image_name.split('@').next().unwrap_or(image_name);
    let segment = last_segment(without_digest);
    segment.split(':').next().unwrap_or(segment).to_string()
}

/// Percent-encodes every byte but ASCII letters, digits, `.-_~` and those in `keep`.
fn percent_encode(text: &str, keep: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let plain = byte.is_ascii_alphanumeric()
            || matches!(byte, b'.' | b'-' | b'_' | b'~')
            || keep.as_bytes().contains(&byte);
        if plain {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` with every character but ASCII letters, digits, `.` and `-` made a `-`: SPDX's idstring.
fn sanitize_id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `candidate`, or `candidate-2`, `candidate-3`, … : the first not yet in `used`, which it joins.
fn unique_id(candidate: String, used: &mut HashSet<String>) -> String {
    let mut id = candidate.clone();
    let mut n = 2;
    while used.contains(&id) {
        id = format!("{candidate}-{n}");
        n += 1;
    }
    used.insert(id.clone());
    id
}

/// One id per package, `Package-<ecosystem>-<name>` sanitised, unique in input order.
///
/// SPDX prefixes them with `SPDXRef-`; CycloneDX uses them as `bom-ref`s.
/// They never meet the image's and base's ids, which have no `Package-`.
fn package_ids(packages: &[SbomPackage]) -> Vec<String> {
    let mut used = HashSet::new();
    packages
        .iter()
        .map(|p| {
            let candidate = sanitize_id(&format!("Package-{}-{}", p.ecosystem, p.name));
            unique_id(candidate, &mut used)
        })
        .collect()
}

/// Which package each package is shipped in, when the document honours it.
///
/// Only one level: the shipping package must exist, differ, and not be
/// shipped in another itself. That keeps the nesting finite whatever the
/// input says (an extension ships inside a Python package, not deeper);
/// a package whose `shipped_by` is not honoured is listed in the image.
fn shipping_packages(packages: &[SbomPackage]) -> Vec<Option<usize>> {
    packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.shipped_by
                .filter(|&s| s != i && packages.get(s).is_some_and(|s| s.shipped_by.is_none()))
        })
        .collect()
}

/// An RFC 4122 UUID (version 5 and variant bits set) from the SHA-256 of `digest`.
fn uuid_from_digest(digest: &Digest) -> String {
    let hash = Sha256::digest(digest.as_str().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The tool's name and version from `stowage-<version>`; no version when it is not that shape.
fn tool_name_version(tool: &str) -> (&str, Option<&str>) {
    match tool.split_once('-') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => (name, Some(version)),
        _ => (tool, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(seed: &str) -> Digest {
        Digest::of(seed.as_bytes())
    }

    fn package(ecosystem: &str, name: &str, license: Option<&str>) -> SbomPackage {
        SbomPackage {
            ecosystem: ecosystem.to_string(),
            name: name.to_string(),
            version: "1.0".to_string(),
            license: license.map(str::to_string),
            license_concluded: None,
            purl: format!("pkg:{ecosystem}/{}@1.0", percent_encode(name, "")),
            layer: digest("layer"),
            shipped_by: None,
        }
    }

    /// An image of a base and packages with the awkward cases: odd names,
    /// colliding sanitised names, free-text and missing licenses, a shipped extension.
    fn sample() -> SbomInput {
        let mut extension = package("npm", "@jupyterlab/foo", Some("BSD-3-Clause"));
        extension.purl = "pkg:npm/%40jupyterlab/foo@1.0".to_string();
        extension.shipped_by = Some(1);
        SbomInput {
            image_name: "docker.io/acme/notebook:1".to_string(),
            image_digest: digest("image"),
            base: Some(SbomBase {
                name: "docker.io/library/python:3.12-slim".to_string(),
                digest: Some(digest("base")),
            }),
            created: "2024-01-02T03:04:05Z".to_string(),
            tool: "stowage-0.1.0".to_string(),
            packages: vec![
                package("pypi", "numpy", Some("BSD License")),
                package("pypi", "jupyterlab-foo", Some("mit or Apache-2.0")),
                extension,
                package("pypi", "Ünï code \"pkg\"", None),
                package("pypi", "foo_bar", Some("MIT OR Apache-2.0")),
                package("pypi", "foo-bar", Some("BSD License")),
                package("cran", "foo.bar", Some("MIT + file LICENSE")),
                package("conda", "foo+bar", Some("")),
            ],
        }
    }

    fn render_json(input: &SbomInput, format: SbomFormat) -> Value {
        let bytes = render_sbom(input, format);
        assert_eq!(bytes.last(), Some(&b'\n'));
        serde_json::from_slice(&bytes).unwrap()
    }

    fn spdx_package<'a>(document: &'a Value, name: &str) -> &'a Value {
        let packages = document["packages"].as_array().unwrap();
        packages.iter().find(|p| p["name"] == name).unwrap()
    }

    #[test]
    fn same_input_gives_the_same_bytes() {
        for format in [SbomFormat::Spdx, SbomFormat::CycloneDx] {
            assert_eq!(
                render_sbom(&sample(), format),
                render_sbom(&sample(), format)
            );
        }
    }

    #[test]
    fn output_is_compact_with_sorted_keys() {
        let bytes = render_sbom(&sample(), SbomFormat::Spdx);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("{\"SPDXID\":\"SPDXRef-DOCUMENT\",\"creationInfo\":{"));
        assert_eq!(text.matches('\n').count(), 1);
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text.trim_end(), reparsed.to_string());
    }

    #[test]
    fn the_image_digest_decides_namespace_and_serial() {
        let a = sample();
        let mut b = sample();
        b.image_digest = digest("another image");
        let namespace =
            |i: &SbomInput| render_json(i, SbomFormat::Spdx)["documentNamespace"].clone();
        let serial = |i: &SbomInput| render_json(i, SbomFormat::CycloneDx)["serialNumber"].clone();
        assert_ne!(namespace(&a), namespace(&b));
        assert_ne!(serial(&a), serial(&b));
        assert_eq!(
            namespace(&a),
            format!(
                "https://stowage.dev/spdx/docker.io-acme-notebook-1/sha256-{}",
                a.image_digest.hex()
            )
        );
    }

    #[test]
    fn serial_number_is_an_rfc_4122_uuid() {
        let serial = uuid_from_digest(&digest("image"));
        let groups: Vec<&str> = serial.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12]);
        assert!(groups[2].starts_with('5'));
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert!(
            serial
                .bytes()
                .all(|b| b == b'-' || matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
    }

    #[test]
    fn odd_names_are_escaped_and_kept() {
        let input = sample();
        for format in [SbomFormat::Spdx, SbomFormat::CycloneDx] {
            let text = String::from_utf8(render_sbom(&input, format)).unwrap();
            assert!(text.contains(r#""Ünï code \"pkg\"""#), "{format:?}");
            assert!(text.contains(r#""@jupyterlab/foo""#), "{format:?}");
        }
        let spdx = render_json(&input, SbomFormat::Spdx);
        let ids: Vec<&str> = spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        for id in &ids {
            let rest = id.strip_prefix("SPDXRef-").unwrap();
            assert!(
                rest.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
                "{id}"
            );
        }
        assert_eq!(
            spdx_package(&spdx, "@jupyterlab/foo")["SPDXID"],
            "SPDXRef-Package-npm--jupyterlab-foo"
        );
    }

    #[test]
    fn colliding_sanitised_names_get_unique_ids() {
        let spdx = render_json(&sample(), SbomFormat::Spdx);
        assert_eq!(
            spdx_package(&spdx, "foo_bar")["SPDXID"],
            "SPDXRef-Package-pypi-foo-bar"
        );
        assert_eq!(
            spdx_package(&spdx, "foo-bar")["SPDXID"],
            "SPDXRef-Package-pypi-foo-bar-2"
        );
        let ids: HashSet<&str> = spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2 + sample().packages.len());
    }

    #[test]
    fn free_text_licenses_become_license_refs_in_spdx() {
        let spdx = render_json(&sample(), SbomFormat::Spdx);
        assert_eq!(
            spdx_package(&spdx, "numpy")["licenseDeclared"],
            "LicenseRef-BSD-License"
        );
        assert_eq!(
            spdx_package(&spdx, "foo-bar")["licenseDeclared"],
            "LicenseRef-BSD-License"
        );
        assert_eq!(
            spdx_package(&spdx, "foo_bar")["licenseDeclared"],
            "MIT OR Apache-2.0"
        );
        assert_eq!(
            spdx_package(&spdx, "foo+bar")["licenseDeclared"],
            "NOASSERTION"
        );
        // Lowercase operators are still an expression; written canonical.
        assert_eq!(
            spdx_package(&spdx, "jupyterlab-foo")["licenseDeclared"],
            "MIT OR Apache-2.0"
        );
        assert_eq!(
            spdx["hasExtractedLicensingInfos"],
            serde_json::json!([
                {"licenseId": "LicenseRef-BSD-License", "name": "BSD License", "extractedText": "BSD License"},
                {"licenseId": "LicenseRef-MIT---file-LICENSE", "name": "MIT + file LICENSE", "extractedText": "MIT + file LICENSE"},
            ])
        );
    }

    #[test]
    fn free_text_licenses_are_names_in_cyclonedx() {
        let bom = render_json(&sample(), SbomFormat::CycloneDx);
        let components = bom["components"].as_array().unwrap();
        let numpy = components.iter().find(|c| c["name"] == "numpy").unwrap();
        assert_eq!(
            numpy["licenses"],
            serde_json::json!([{"license": {"name": "BSD License", "acknowledgement": "declared"}}])
        );
        let foo = components.iter().find(|c| c["name"] == "foo_bar").unwrap();
        assert_eq!(
            foo["licenses"],
            serde_json::json!([{"expression": "MIT OR Apache-2.0", "acknowledgement": "declared"}])
        );
        let blank = components.iter().find(|c| c["name"] == "foo+bar").unwrap();
        assert!(blank.get("licenses").is_none());
    }

    /// The sample with numpy's license concluded from its files, and one
    /// package known only by its concluded license.
    fn concluded() -> SbomInput {
        let mut input = sample();
        input.packages[0].license_concluded = Some("BSD-3-Clause".to_string());
        input.packages[3].license_concluded = Some("MIT AND Apache-2.0".to_string());
        input
    }

    #[test]
    fn spdx_reports_declared_and_concluded_apart() {
        let spdx = render_json(&concluded(), SbomFormat::Spdx);
        let numpy = spdx_package(&spdx, "numpy");
        assert_eq!(numpy["licenseDeclared"], "LicenseRef-BSD-License");
        assert_eq!(numpy["licenseConcluded"], "BSD-3-Clause");
        let unnamed = spdx_package(&spdx, "Ünï code \"pkg\"");
        assert_eq!(unnamed["licenseDeclared"], "NOASSERTION");
        assert_eq!(unnamed["licenseConcluded"], "MIT AND Apache-2.0");
        assert_eq!(
            spdx_package(&spdx, "foo_bar")["licenseConcluded"],
            "NOASSERTION"
        );
    }

    #[test]
    fn cyclonedx_acknowledges_declared_and_concluded() {
        let bom = render_json(&concluded(), SbomFormat::CycloneDx);
        let components = bom["components"].as_array().unwrap();
        let find = |name: &str| components.iter().find(|c| c["name"] == name).unwrap();
        assert_eq!(
            find("numpy")["licenses"],
            serde_json::json!([
                {"license": {"name": "BSD License", "acknowledgement": "declared"}},
                {"license": {"id": "BSD-3-Clause", "acknowledgement": "concluded"}},
            ])
        );
        assert_eq!(
            find("Ünï code \"pkg\"")["licenses"],
            serde_json::json!([{"expression": "MIT AND Apache-2.0", "acknowledgement": "concluded"}])
        );
    }

    #[test]
    fn shipped_packages_sit_inside_their_shipper() {
        let spdx = render_json(&sample(), SbomFormat::Spdx);
        assert!(
            spdx["relationships"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({
                    "spdxElementId": "SPDXRef-Package-pypi-jupyterlab-foo",
                    "relationshipType": "CONTAINS",
                    "relatedSpdxElement": "SPDXRef-Package-npm--jupyterlab-foo",
                }))
        );
        let bom = render_json(&sample(), SbomFormat::CycloneDx);
        let components = bom["components"].as_array().unwrap();
        assert_eq!(components.len(), 1 + sample().packages.len() - 1);
        let shipper = components
            .iter()
            .find(|c| c["name"] == "jupyterlab-foo")
            .unwrap();
        assert_eq!(shipper["components"][0]["name"], "@jupyterlab/foo");
        assert_eq!(components[0]["type"], "container");
    }

    #[test]
    fn shipped_by_that_cannot_nest_is_listed_in_the_image() {
        let mut input = sample();
        input.packages[0].shipped_by = Some(0);
        input.packages[3].shipped_by = Some(2);
        input.packages[4].shipped_by = Some(99);
        let bom = render_json(&input, SbomFormat::CycloneDx);
        assert_eq!(
            bom["components"].as_array().unwrap().len(),
            input.packages.len()
        );
    }

    #[test]
    fn image_purl_names_the_repository_when_the_name_does() {
        let d = digest("image");
        let hex = d.hex();
        assert_eq!(
            image_purl("docker.io/acme/notebook:1", &d),
            format!("pkg:oci/notebook@sha256%3A{hex}?repository_url=docker.io/acme/notebook")
        );
        assert_eq!(
            image_purl("localhost:5000/a/b@sha256:00", &d),
            format!("pkg:oci/b@sha256%3A{hex}")
        );
        assert_eq!(
            image_purl("localhost:5000/a/b:2", &d),
            format!("pkg:oci/b@sha256%3A{hex}?repository_url=localhost%3A5000/a/b")
        );
        assert_eq!(
            image_purl("stowage-image", &d),
            format!("pkg:oci/stowage-image@sha256%3A{hex}")
        );
        assert_eq!(
            image_purl("Not A/Ref:x", &d),
            format!("pkg:oci/ref@sha256%3A{hex}")
        );
    }

    #[test]
    fn scratch_images_have_no_base() {
        let mut input = sample();
        input.base = None;
        let spdx = render_json(&input, SbomFormat::Spdx);
        assert_eq!(
            spdx["packages"].as_array().unwrap().len(),
            input.packages.len() + 1
        );
        assert!(!spdx.to_string().contains("DESCENDANT_OF"));
        let bom = render_json(&input, SbomFormat::CycloneDx);
        assert!(bom.get("dependencies").is_none());
    }
}
