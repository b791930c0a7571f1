//! The SPDX 2.3 JSON document: the image package, its base, and one package per inventory entry.
//!
//! The image is what the document DESCRIBES; it is a DESCENDANT_OF its base
//! and CONTAINS each package, or the package that ships it CONTAINS it. The
//! layer of a package is an annotation (`layer: sha256:…`), the one place
//! SPDX 2.3 has for a tool's remark about a package.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::{
    SbomBase, SbomInput, SbomPackage, image_purl, license, package_ids, sanitize_id,
    shipping_packages, unique_id,
};

const NOASSERTION: &str = "NOASSERTION";
const IMAGE_ID: &str = "SPDXRef-image";
const BASE_ID: &str = "SPDXRef-base";

/// The whole document as a JSON value.
pub(super) fn document(input: &SbomInput) -> Value {
    let ids: Vec<String> = package_ids(&input.packages)
        .into_iter()
        .map(|id| format!("SPDXRef-{id}"))
        .collect();
    let licenses = Licenses::of(&input.packages);
    let mut packages = vec![image_package(input)];
    packages.extend(input.base.as_ref().map(base_package));
    for ((package, id), (declared, concluded)) in input
        .packages
        .iter()
        .zip(&ids)
        .zip(licenses.declared.iter().zip(&licenses.concluded))
    {
        packages.push(package_entry(input, package, id, [declared, concluded]));
    }
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": input.image_name,
        "documentNamespace": format!(
            "https://stowage.dev/spdx/{}/sha256-{}",
            sanitize_id(&input.image_name),
            input.image_digest.hex()
        ),
        "creationInfo": {
            "created": input.created,
            "creators": [format!("Tool: {}", input.tool)],
        },
        "packages": packages,
        "relationships": relationships(input, &ids),
    });
    if !licenses.extracted.is_empty()
        && let Value::Object(map) = &mut document
    {
        map.insert(
            "hasExtractedLicensingInfos".into(),
            Value::Array(licenses.extracted),
        );
    }
    document
}

/// The image's own package: what the document describes.
fn image_package(input: &SbomInput) -> Value {
    let mut package = container_package(IMAGE_ID, &input.image_name);
    package.insert("versionInfo".into(), json!(input.image_digest.as_str()));
    package.insert(
        "checksums".into(),
        json!([{"algorithm": "SHA256", "checksumValue": input.image_digest.hex()}]),
    );
    package.insert(
        "externalRefs".into(),
        json!([purl_ref(&image_purl(
            &input.image_name,
            &input.image_digest
        ))]),
    );
    Value::Object(package)
}

/// The base image's package; a checksum and purl only when its digest is known.
fn base_package(base: &SbomBase) -> Value {
    let mut package = container_package(BASE_ID, &base.name);
    if let Some(digest) = &base.digest {
        package.insert("versionInfo".into(), json!(digest.as_str()));
        package.insert(
            "checksums".into(),
            json!([{"algorithm": "SHA256", "checksumValue": digest.hex()}]),
        );
        package.insert(
            "externalRefs".into(),
            json!([purl_ref(&image_purl(&base.name, digest))]),
        );
    }
    Value::Object(package)
}

fn container_package(id: &str, name: &str) -> Map<String, Value> {
    let package = json!({
        "SPDXID": id,
        "name": name,
        "primaryPackagePurpose": "CONTAINER",
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "supplier": NOASSERTION,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
    });
    match package {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `licenses` is `[declared, concluded]`, each an expression, a `LicenseRef-` or NOASSERTION.
fn package_entry(
    input: &SbomInput,
    package: &SbomPackage,
    id: &str,
    licenses: [&String; 2],
) -> Value {
    let [declared, concluded] = licenses;
    let mut entry = json!({
        "SPDXID": id,
        "name": package.name,
        "primaryPackagePurpose": "LIBRARY",
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "supplier": NOASSERTION,
        "licenseConcluded": concluded,
        "licenseDeclared": declared,
        "copyrightText": NOASSERTION,
        "annotations": [{
            "annotationType": "OTHER",
            "annotator": format!("Tool: {}", input.tool),
            "annotationDate": input.created,
            "comment": format!("layer: {}", package.layer),
        }],
    });
    if let Value::Object(map) = &mut entry {
        if !package.version.is_empty() {
            map.insert("versionInfo".into(), json!(package.version));
        }
        if !package.purl.is_empty() {
            map.insert("externalRefs".into(), json!([purl_ref(&package.purl)]));
        }
    }
    entry
}

fn purl_ref(purl: &str) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

/// DESCRIBES the image, the image DESCENDANT_OF its base, and who CONTAINS each package.
fn relationships(input: &SbomInput, ids: &[String]) -> Vec<Value> {
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];
    if input.base.is_some() {
        relationships.push(relationship(IMAGE_ID, "DESCENDANT_OF", BASE_ID));
    }
    for (id, shipper) in ids.iter().zip(shipping_packages(&input.packages)) {
        let container = shipper
            .and_then(|s| ids.get(s))
            .map_or(IMAGE_ID, String::as_str);
        relationships.push(relationship(container, "CONTAINS", id));
    }
    relationships
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}

/// Each package's `licenseDeclared` and `licenseConcluded`, and the `LicenseRef-`s the free-text ones need.
struct Licenses {
    declared: Vec<String>,
    concluded: Vec<String>,
    /// `hasExtractedLicensingInfos` entries, one per distinct text, in first-use order.
    extracted: Vec<Value>,
}

impl Licenses {
    fn of(packages: &[SbomPackage]) -> Licenses {
        let mut refs = LicenseRefs::default();
        let mut declared = Vec::with_capacity(packages.len());
        let mut concluded = Vec::with_capacity(packages.len());
        for package in packages {
            declared.push(refs.field(package.license.as_deref()));
            concluded.push(refs.field(package.license_concluded.as_deref()));
        }
        let extracted = refs
            .texts
            .into_iter()
            .map(|(text, id)| json!({"licenseId": id, "name": text, "extractedText": text}))
            .collect();
        Licenses {
            declared,
            concluded,
            extracted,
        }
    }
}

/// The `LicenseRef-`s made so far, one per distinct text.
#[derive(Default)]
struct LicenseRefs<'a> {
    used: HashSet<String>,
    texts: Vec<(&'a str, String)>,
}

impl<'a> LicenseRefs<'a> {
    /// A license field's value: the SPDX expression, the text's `LicenseRef-`, or NOASSERTION.
    fn field(&mut self, text: Option<&'a str>) -> String {
        let text = text.unwrap_or("").trim();
        if text.is_empty() {
            return NOASSERTION.to_string();
        }
        if let Some(expression) = license::spdx_expression(text) {
            return expression;
        }
        if let Some((_, id)) = self.texts.iter().find(|(t, _)| *t == text) {
            return id.clone();
        }
        let id = unique_id(license_ref(text), &mut self.used);
        self.texts.push((text, id.clone()));
        id
    }
}

/// `LicenseRef-` and the text sanitised, cut to a readable length.
fn license_ref(text: &str) -> String {
    let mut id = sanitize_id(text);
    if let Some((cut, _)) = id.char_indices().nth(64) {
        id.truncate(cut);
    }
    format!("LicenseRef-{id}")
}
