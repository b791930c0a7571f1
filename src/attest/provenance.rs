//! SLSA provenance v1: how an image was built (builder, spec, resolved base and sources, parameters, times), as an in-toto predicate.
//!
//! A pure function of typed input: times come from `SOURCE_DATE_EPOCH`
//! (the image config's `created`), never from the clock, so the same build
//! gives the same bytes. The input carries no secret: the caller passes
//! only the build's parameters, never environment values or credentials.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::digest::Digest;

/// `buildDefinition.buildType`: what `externalParameters` mean.
pub const BUILD_TYPE: &str = "https://stowage.dev/provenance/build/v1";
/// `runDetails.builder.id` before the version: `…@v0.1.0`.
pub const BUILDER_ID: &str = "https://stowage.dev/stowage";

/// A resolved input of the build.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// `spec`, `base`, `library`, `workspace`.
    pub name: String,
    /// Where it came from: `file:…` for a folder or file, a package URL for a registry base.
    pub uri: String,
    /// The content digest, when the input has one (a file, a manifest).
    pub digest: Option<Digest>,
    /// What else identifies it (a source folder's target and the digests of its layers).
    pub annotations: BTreeMap<String, Value>,
}

/// Everything the provenance says.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenanceInput {
    /// stowage's version, e.g. `0.1.0`.
    pub version: String,
    /// The spec file as given and its digest.
    pub spec_path: String,
    pub spec_digest: Digest,
    /// The spec file, the base, the library and the workspace, in that order.
    pub dependencies: Vec<Dependency>,
    /// The build's settings (platform, format, compression, destinations…); no secrets.
    pub parameters: BTreeMap<String, Value>,
    /// RFC 3339 from `SOURCE_DATE_EPOCH`: the build's start and end as the image records them.
    pub time: String,
}

/// The provenance predicate (`https://slsa.dev/provenance/v1`).
pub fn provenance(input: &ProvenanceInput) -> Value {
    let mut external: serde_json::Map<String, Value> = input
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    external.insert(
        "spec".into(),
        json!({"path": input.spec_path, "digest": {"sha256": input.spec_digest.hex()}}),
    );
    let dependencies: Vec<Value> = input.dependencies.iter().map(dependency_json).collect();
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {
                "id": format!("{BUILDER_ID}@v{}", input.version),
                "version": {"stowage": input.version},
            },
            "metadata": {
                "startedOn": input.time,
                "finishedOn": input.time,
            },
        },
    })
}

fn dependency_json(dependency: &Dependency) -> Value {
    let mut value = json!({"name": dependency.name, "uri": dependency.uri});
    if let Some(digest) = &dependency.digest {
        value["digest"] = json!({"sha256": digest.hex()});
    }
    if !dependency.annotations.is_empty() {
        value["annotations"] = json!(dependency.annotations);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProvenanceInput {
        ProvenanceInput {
            version: "0.1.0".into(),
            spec_path: "stowage.toml".into(),
            spec_digest: Digest::of(b"spec"),
            dependencies: vec![
                Dependency {
                    name: "base".into(),
                    uri: "pkg:docker/docker.io/library/debian@bookworm".into(),
                    digest: Some(Digest::of(b"base")),
                    annotations: BTreeMap::new(),
                },
                Dependency {
                    name: "library".into(),
                    uri: "file:venv".into(),
                    digest: None,
                    annotations: BTreeMap::from([("target".into(), json!("/opt/venv"))]),
                },
            ],
            parameters: BTreeMap::from([("platform".into(), json!("linux/amd64"))]),
            time: "1970-01-01T00:00:01Z".into(),
        }
    }

    #[test]
    fn provenance_has_slsa_v1_fields() {
        let p = provenance(&input());
        assert_eq!(p["buildDefinition"]["buildType"], BUILD_TYPE);
        assert_eq!(
            p["runDetails"]["builder"]["id"],
            "https://stowage.dev/stowage@v0.1.0"
        );
        assert_eq!(
            p["buildDefinition"]["externalParameters"]["spec"]["digest"]["sha256"],
            Digest::of(b"spec").hex()
        );
        assert_eq!(
            p["buildDefinition"]["externalParameters"]["platform"],
            "linux/amd64"
        );
        let deps = p["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        assert_eq!(deps[0]["digest"]["sha256"], Digest::of(b"base").hex());
        assert!(deps[1].get("digest").is_none());
        assert_eq!(deps[1]["annotations"]["target"], "/opt/venv");
        assert_eq!(
            p["runDetails"]["metadata"]["startedOn"],
            "1970-01-01T00:00:01Z"
        );
        assert_eq!(provenance(&input()), p);
    }
}
