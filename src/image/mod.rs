//! Images as values: manifest, config and index bytes, descriptors, media types and canonical JSON.
//!
//! The exact bytes of a manifest or config are its identity (`raw_*`); the
//! parsed structs are conveniences and are never re-serialised to compute a
//! digest. New JSON is written canonically: keys sorted, no whitespace.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;

pub mod artifact;
pub mod attestation;
#[cfg(test)]
mod attested_tests;
pub mod config;
pub use artifact::Artifact;

/// Media types stowage reads and writes.
/// An image index with every child image resolved.
#[derive(Debug, Clone)]
pub struct ImageIndex {
    pub raw: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
    pub images: Vec<Image>,
}

pub mod media {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_FOREIGN_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}

/// Manifests and configs larger than this are refused: real ones are kilobytes.
pub const MAX_JSON_BYTES: u64 = 8 * 1024 * 1024;

/// What is wrong with an image's JSON.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what} is not valid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: {problem}")]
    Invalid { what: String, problem: String },
    #[error("no image for platform {wanted}; available: {available}")]
    NoPlatform { wanted: String, available: String },
    #[error("`{0}` is not a platform (expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64)")]
    BadPlatform(String),
    #[error("media type {media_type} has no {format} equivalent")]
    NoEquivalent {
        media_type: String,
        format: &'static str,
    },
}

/// A content descriptor; fields stowage does not know are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Reads `null` as an empty map: Go writers emit `"annotations": null` for
/// a nil map, and docker and containerd read it as none.
fn null_as_empty<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<BTreeMap<String, String>>::deserialize(deserializer)?.unwrap_or_default())
}

impl Descriptor {
    /// A descriptor with only the required fields.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// An image's platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Platform {
    /// Parses `OS/ARCH[/VARIANT]`: the one platform grammar of the command
    /// line, the spec and image indexes (lowercase letters, digits, `_`, `.`).
    pub fn parse(s: &str) -> Result<Platform, ImageError> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(ImageError::BadPlatform(s.to_string()));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
            extra: BTreeMap::new(),
        })
    }

    /// What to write instead of `input`, which `parse` refused: the OS a
    /// bare architecture lacks, the architecture a bare OS lacks, lowercase,
    /// or the grammar itself.
    pub fn hint_for(input: &str) -> String {
        let lower = input.trim().to_ascii_lowercase();
        if !lower.contains('/') {
            if let Some(arch) = oci_architecture(&lower) {
                return format!("give the OS too: write linux/{arch}");
            }
            if matches!(lower.as_str(), "linux" | "windows" | "darwin" | "freebsd") {
                return format!("give the architecture too: write {lower}/amd64 or {lower}/arm64");
            }
        }
        if lower != input && Platform::parse(&lower).is_ok() {
            return format!("write it as {lower}");
        }
        "write OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8".into()
    }

    /// The platform this binary runs on, in OCI terms.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
            extra: BTreeMap::new(),
        }
    }

    /// Whether an image of platform `self` can serve a request for `wanted`
    /// (a request without a variant accepts any variant; arm64 without a variant means v8).
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        if self.os != wanted.os || self.architecture != wanted.architecture {
            return false;
        }
        match (&wanted.variant, &self.variant) {
            (None, _) => true,
            (Some(w), Some(have)) => w == have,
            (Some(w), None) => self.architecture == "arm64" && w == "v8",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The OCI name of an architecture, also from the kernel's name (`x86_64`, `aarch64`), when `name` is one.
fn oci_architecture(name: &str) -> Option<&'static str> {
    Some(match name {
        "amd64" | "x86_64" | "x86-64" => "amd64",
        "arm64" | "aarch64" => "arm64",
        "arm" | "armhf" | "armv7" | "armv7l" => "arm/v7",
        "386" | "i386" | "i686" | "x86" => "386",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return None,
    })
}

/// The parts of an image manifest stowage uses; the raw bytes stay the identity.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The parts of an image index stowage uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// Whether a media type names an index (OCI or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == media::OCI_INDEX || media_type == media::DOCKER_LIST
}

/// Whether a media type names an image manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == media::OCI_MANIFEST || media_type == media::DOCKER_MANIFEST
}

/// Whether a layer media type is an uncompressed tar.
pub fn is_uncompressed_layer(media_type: &str) -> bool {
    media_type == media::OCI_LAYER || media_type == media::DOCKER_LAYER
}

/// Which manifest family an image is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Oci,
    Docker,
}

impl Format {
    /// The family of a manifest media type.
    pub fn of_manifest(media_type: &str) -> Format {
        if media_type == media::DOCKER_MANIFEST {
            Format::Docker
        } else {
            Format::Oci
        }
    }

    /// The manifest media type of this family.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Format::Oci => media::OCI_MANIFEST,
            Format::Docker => media::DOCKER_MANIFEST,
        }
    }

    /// The config media type of this family.
    pub fn config_media_type(self) -> &'static str {
        match self {
            Format::Oci => media::OCI_CONFIG,
            Format::Docker => media::DOCKER_CONFIG,
        }
    }

    /// The same layer media type in this family.
    pub fn layer_media_type(self, media_type: &str) -> Result<&'static str, ImageError> {
        use media::*;
        let mapped = match (self, media_type) {
            (Format::Oci, OCI_LAYER | DOCKER_LAYER) => Some(OCI_LAYER),
            (Format::Oci, OCI_LAYER_GZIP | DOCKER_LAYER_GZIP) => Some(OCI_LAYER_GZIP),
            (Format::Oci, OCI_LAYER_ZSTD) => Some(OCI_LAYER_ZSTD),
            (Format::Oci, OCI_FOREIGN_GZIP | DOCKER_FOREIGN_GZIP) => Some(OCI_FOREIGN_GZIP),
            (Format::Docker, OCI_LAYER | DOCKER_LAYER) => Some(DOCKER_LAYER),
            (Format::Docker, OCI_LAYER_GZIP | DOCKER_LAYER_GZIP) => Some(DOCKER_LAYER_GZIP),
            (Format::Docker, OCI_FOREIGN_GZIP | DOCKER_FOREIGN_GZIP) => Some(DOCKER_FOREIGN_GZIP),
            _ => None,
        };
        mapped.ok_or_else(|| ImageError::NoEquivalent {
            media_type: media_type.to_string(),
            format: match self {
                Format::Oci => "OCI",
                Format::Docker => "Docker schema 2",
            },
        })
    }
}

/// A layer of an image: its blob descriptor and the digest of its uncompressed tar.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

/// One image (one platform): exact manifest and config bytes, with their parsed forms.
#[derive(Debug, Clone)]
pub struct Image {
    raw_manifest: Vec<u8>,
    digest: Digest,
    media_type: String,
    raw_config: Vec<u8>,
    config_descriptor: Descriptor,
    layers: Vec<Layer>,
    annotations: BTreeMap<String, String>,
}

impl Image {
    /// Builds the value from exact manifest and config bytes, checking they agree.
    pub fn from_raw(
        raw_manifest: Vec<u8>,
        fallback_media_type: &str,
        raw_config: Vec<u8>,
    ) -> Result<Image, ImageError> {
        let manifest: Manifest = parse_json("image manifest", &raw_manifest)?;
        if manifest.schema_version != 2 {
            return Err(ImageError::Invalid {
                what: "image manifest".into(),
                problem: format!(
                    "schemaVersion {} is not supported (only 2)",
                    manifest.schema_version
                ),
            });
        }
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| fallback_media_type.to_string());
        if !is_manifest(&media_type) {
            return Err(ImageError::Invalid {
                what: "image manifest".into(),
                problem: format!("media type {media_type} is not an image manifest"),
            });
        }
        let config_digest = Digest::of(&raw_config);
        if config_digest != manifest.config.digest
            || raw_config.len() as u64 != manifest.config.size
        {
            return Err(ImageError::Invalid {
                what: "image config".into(),
                problem: format!(
                    "the manifest names config {} ({} bytes) but the config read is {} ({} bytes)",
                    manifest.config.digest,
                    manifest.config.size,
                    config_digest,
                    raw_config.len()
                ),
            });
        }
        let diff_ids = config_diff_ids(&raw_config)?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::Invalid {
                what: "image config".into(),
                problem: format!(
                    "it lists {} diff_ids for {} layers in the manifest",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        let layers = manifest
            .layers
            .iter()
            .cloned()
            .zip(diff_ids)
            .map(|(descriptor, diff_id)| Layer {
                descriptor,
                diff_id,
            })
            .collect();
        Ok(Image {
            digest: Digest::of(&raw_manifest),
            raw_manifest,
            media_type,
            raw_config,
            config_descriptor: manifest.config,
            layers,
            annotations: manifest.annotations,
        })
    }

    /// Writes a new manifest for `config` and `layers` in `format`, canonically.
    pub fn assemble(
        format: Format,
        raw_config: Vec<u8>,
        layers: Vec<Layer>,
        annotations: BTreeMap<String, String>,
    ) -> Result<Image, ImageError> {
        let config_descriptor = Descriptor::new(
            format.config_media_type(),
            Digest::of(&raw_config),
            raw_config.len() as u64,
        );
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": format.manifest_media_type(),
            "config": config_descriptor,
            "layers": layers.iter().map(|l| &l.descriptor).collect::<Vec<_>>(),
        });
        if !annotations.is_empty() {
            manifest["annotations"] =
                serde_json::to_value(&annotations).map_err(|source| ImageError::Json {
                    what: "manifest annotations".into(),
                    source,
                })?;
        }
        let raw_manifest = canonical_json(&manifest);
        Image::from_raw(raw_manifest, format.manifest_media_type(), raw_config)
    }

    /// The exact manifest bytes.
    pub fn raw_manifest(&self) -> &[u8] {
        &self.raw_manifest
    }

    /// The manifest digest: the image's identity.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The manifest media type.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The manifest family.
    pub fn format(&self) -> Format {
        Format::of_manifest(&self.media_type)
    }

    /// The exact config bytes.
    pub fn raw_config(&self) -> &[u8] {
        &self.raw_config
    }

    /// The config's descriptor, as the manifest gives it.
    pub fn config_descriptor(&self) -> &Descriptor {
        &self.config_descriptor
    }

    /// The config parsed as JSON.
    pub fn config_json(&self) -> Result<Value, ImageError> {
        parse_json("image config", &self.raw_config)
    }

    /// The layers, base first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The manifest's annotations.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }

    /// A descriptor of this image's manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.raw_manifest.len() as u64,
        )
    }

    /// The platform recorded in the config.
    pub fn platform(&self) -> Option<Platform> {
        let config = self.config_json().ok()?;
        Some(Platform {
            os: config.get("os")?.as_str()?.to_string(),
            architecture: config.get("architecture")?.as_str()?.to_string(),
            variant: config
                .get("variant")
                .and_then(Value::as_str)
                .map(str::to_string),
            extra: BTreeMap::new(),
        })
    }
}

/// The diff_ids a config lists.
pub fn config_diff_ids(raw_config: &[u8]) -> Result<Vec<Digest>, ImageError> {
    #[derive(Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<Digest>,
    }
    #[derive(Deserialize)]
    struct ConfigRootFs {
        rootfs: RootFs,
    }
    let parsed: ConfigRootFs = parse_json("image config", raw_config)?;
    Ok(parsed.rootfs.diff_ids)
}

/// Parses JSON, naming `what` in the error.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    what: &str,
    bytes: &[u8],
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
        what: what.to_string(),
        source,
    })
}

/// JSON with object keys sorted by their bytes and no insignificant whitespace.
///
/// Sorting is done here rather than relied on from serde_json's map type,
/// because a dependency enabling its `preserve_order` feature would silently
/// change every digest stowage computes.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => {
            // Scalars have exactly one compact form; serde_json cannot fail on a Value.
            out.extend_from_slice(serde_json::to_string(scalar).unwrap_or_default().as_bytes());
        }
    }
}

/// Picks the manifest for `wanted` among an index's descriptors, skipping attestations.
pub fn select_platform<'a>(
    manifests: &'a [Descriptor],
    wanted: &Platform,
) -> Result<&'a Descriptor, ImageError> {
    let candidates: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| is_manifest(&d.media_type) || is_index(&d.media_type))
        .filter(|d| !attestation::is_attestation(d))
        .collect();
    if let Some(found) = candidates
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.satisfies(wanted)))
    {
        return Ok(found);
    }
    let available: Vec<String> = candidates
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    Err(ImageError::NoPlatform {
        wanted: wanted.to_string(),
        available: if available.is_empty() {
            "none listed".into()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_annotations_read_as_none() {
        let manifest: Manifest = serde_json::from_str(
            r#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"annotations":null},"layers":[],"annotations":null}"#,
        )
        .unwrap();
        assert!(manifest.annotations.is_empty());
        assert!(manifest.config.annotations.is_empty());
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":{"z":[{"y":1,"x":2}],"c":"\u00e9"}}"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":"é","z":[{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn assemble_then_from_raw_agree() {
        let config = canonical_json(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"tar")]},
            "config": {}
        }));
        let layer = Layer {
            descriptor: Descriptor::new(media::OCI_LAYER_GZIP, Digest::of(b"gz"), 2),
            diff_id: Digest::of(b"tar"),
        };
        let image = Image::assemble(
            Format::Docker,
            config.clone(),
            vec![layer.clone()],
            BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(image.media_type(), media::DOCKER_MANIFEST);
        assert_eq!(image.layers(), &[layer]);
        assert_eq!(image.digest(), &Digest::of(image.raw_manifest()));
        assert!(!String::from_utf8_lossy(image.raw_manifest()).contains(' '));
        let mismatched = Image::from_raw(
            image.raw_manifest().to_vec(),
            media::OCI_MANIFEST,
            b"{}".to_vec(),
        );
        assert!(mismatched.is_err());
    }

    #[test]
    fn platform_selection_and_errors() {
        let mut amd = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"1"), 1);
        amd.platform = Some(Platform::parse("linux/amd64").unwrap());
        let mut arm = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"2"), 1);
        arm.platform = Some(Platform::parse("linux/arm64/v8").unwrap());
        let list = [amd, arm];
        assert_eq!(
            select_platform(&list, &Platform::parse("linux/arm64").unwrap())
                .unwrap()
                .size,
            1
        );
        let err = select_platform(&list, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("linux/amd64, linux/arm64/v8"),
            "{err}"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/v1/x").is_err());
    }

    #[test]
    fn a_refused_platform_gets_the_hint_for_what_it_lacks() {
        for (input, hint) in [
            ("amd64", "give the OS too: write linux/amd64"),
            ("x86_64", "give the OS too: write linux/amd64"),
            ("aarch64", "give the OS too: write linux/arm64"),
            (
                "linux",
                "give the architecture too: write linux/amd64 or linux/arm64",
            ),
            ("Linux/AMD64", "write it as linux/amd64"),
            (" linux/arm64 ", "write it as linux/arm64"),
            (
                "linux/amd64/v1/x",
                "write OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8",
            ),
            (
                "linux//amd64",
                "write OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8",
            ),
        ] {
            assert!(Platform::parse(input).is_err(), "{input:?} is refused");
            assert_eq!(Platform::hint_for(input), hint, "{input:?}");
        }
    }
}
