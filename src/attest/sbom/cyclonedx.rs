//! The CycloneDX 1.6 JSON document: the image as `metadata.component`, its base and packages as `components`.
//!
//! A package shipped inside another (a JupyterLab extension in a Python
//! package) is nested in that package's `components`, CycloneDX's way of
//! saying one component is part of another. The image depends on its base.

use serde_json::{Value, json};

use super::{
    SbomBase, SbomInput, SbomPackage, image_purl, license, package_ids, shipping_packages,
    tool_name_version, uuid_from_digest,
};

const IMAGE_REF: &str = "image";
const BASE_REF: &str = "base";

/// The whole document as a JSON value.
pub(super) fn document(input: &SbomInput) -> Value {
    let mut components: Vec<Value> = input.base.iter().map(base_component).collect();
    components.extend(package_components(input));
    let mut document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid_from_digest(&input.image_digest)),
        "version": 1,
        "metadata": {
            "timestamp": input.created,
            "tools": {"components": [tool_component(&input.tool)]},
            "component": image_component(input),
        },
        "components": components,
    });
    if input.base.is_some()
        && let Value::Object(map) = &mut document
    {
        map.insert(
            "dependencies".into(),
            json!([
                {"ref": IMAGE_REF, "dependsOn": [BASE_REF]},
                {"ref": BASE_REF, "dependsOn": []},
            ]),
        );
    }
    document
}

fn tool_component(tool: &str) -> Value {
    let (name, version) = tool_name_version(tool);
    let mut component = json!({"type": "application", "name": name});
    if let (Some(version), Value::Object(map)) = (version, &mut component) {
        map.insert("version".into(), json!(version));
    }
    component
}

fn image_component(input: &SbomInput) -> Value {
    json!({
        "type": "container",
        "bom-ref": IMAGE_REF,
        "name": input.image_name,
        "version": input.image_digest.as_str(),
        "hashes": [{"alg": "SHA-256", "content": input.image_digest.hex()}],
        "purl": image_purl(&input.image_name, &input.image_digest),
    })
}

/// The base image; a version, hash and purl only when its digest is known.
fn base_component(base: &SbomBase) -> Value {
    let mut component = json!({
        "type": "container",
        "bom-ref": BASE_REF,
        "name": base.name,
    });
    if let (Some(digest), Value::Object(map)) = (&base.digest, &mut component) {
        map.insert("version".into(), json!(digest.as_str()));
        map.insert(
            "hashes".into(),
            json!([{"alg": "SHA-256", "content": digest.hex()}]),
        );
        map.insert("purl".into(), json!(image_purl(&base.name, digest)));
    }
    component
}

/// The packages in input order, each shipped one nested in its shipping package.
fn package_components(input: &SbomInput) -> Vec<Value> {
    let ids = package_ids(&input.packages);
    let shippers = shipping_packages(&input.packages);
    let mut components: Vec<Value> = input
        .packages
        .iter()
        .zip(&ids)
        .map(|(p, id)| package_component(p, id))
        .collect();
    // Shipped packages ship in top-level ones (see `shipping_packages`), so
    // moving each into its shipper, in input order, never moves a component
    // that has already been moved into another.
    let mut nested: Vec<Vec<Value>> = vec![Vec::new(); components.len()];
    for (i, shipper) in shippers.iter().enumerate() {
        if let Some(s) = *shipper {
            nested[s].push(std::mem::take(&mut components[i]));
        }
    }
    components
        .into_iter()
        .zip(nested)
        .zip(&shippers)
        .filter(|(_, shipper)| shipper.is_none())
        .map(|((mut component, children), _)| {
            if !children.is_empty()
                && let Value::Object(map) = &mut component
            {
                map.insert("components".into(), Value::Array(children));
            }
            component
        })
        .collect()
}

fn package_component(package: &SbomPackage, id: &str) -> Value {
    let mut component = json!({
        "type": "library",
        "bom-ref": id,
        "name": package.name,
        "properties": [
            {"name": "stowage:ecosystem", "value": package.ecosystem},
            {"name": "stowage:layer:digest", "value": package.layer.as_str()},
        ],
    });
    if let Value::Object(map) = &mut component {
        if !package.version.is_empty() {
            map.insert("version".into(), json!(package.version));
        }
        if !package.purl.is_empty() {
            map.insert("purl".into(), json!(package.purl));
        }
        if let Some(licenses) = licenses(package) {
            map.insert("licenses".into(), licenses);
        }
    }
    component
}

/// The declared and the concluded license, each with its `acknowledgement`;
/// none when neither is known. CycloneDX allows an expression only alone in
/// the list, so one license that is an expression is written as one, and
/// with two each is a license: by `id` when it is one SPDX identifier,
/// else by `name` (free text, or an expression of several).
fn licenses(package: &SbomPackage) -> Option<Value> {
    let known: Vec<(&str, &str)> = [
        (package.license.as_deref(), "declared"),
        (package.license_concluded.as_deref(), "concluded"),
    ]
    .into_iter()
    .filter_map(|(text, acknowledgement)| {
        let text = text?.trim();
        (!text.is_empty()).then_some((text, acknowledgement))
    })
    .collect();
    if let [(text, acknowledgement)] = known.as_slice()
        && let Some(expression) = license::spdx_expression(text)
    {
        return Some(json!([{"expression": expression, "acknowledgement": acknowledgement}]));
    }
    let entries: Vec<Value> = known
        .into_iter()
        .map(
            |(text, acknowledgement)| match license::spdx_expression(text) {
                Some(id) if !id.contains(' ') => {
                    json!({"license": {"id": id, "acknowledgement": acknowledgement}})
                }
                _ => json!({"license": {"name": text, "acknowledgement": acknowledgement}}),
            },
        )
        .collect();
    (!entries.is_empty()).then_some(Value::Array(entries))
}
