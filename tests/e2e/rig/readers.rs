//! Independent readers of what stowage writes (OCI layouts, docker-save
//! tarballs, layer tars) and hash and gzip helpers, so assertions do not
//! trust stowage to describe its own output.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Decompresses gzip or zstd data; returns other data unchanged.
pub fn decompress(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("valid gzip");
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        out = zstd::decode_all(bytes).expect("valid zstd");
    } else {
        out = bytes.to_vec();
    }
    out
}

/// Writes a decompressed copy of a `.tar.gz` next to it and returns its
/// path. podman 4.3 and skopeo 1.9 cannot read gzip-wrapped docker-archive
/// files (not even `docker save | gzip`), so they are handed the tar.
pub fn gunzip_to_tar(gz: &Path) -> PathBuf {
    let tar = gz.with_extension("").with_extension("plain.tar");
    fs::write(&tar, decompress(&fs::read(gz).unwrap())).unwrap();
    tar
}

/// An image read from an OCI layout or a docker-save tarball.
#[derive(Debug, Clone)]
pub struct ReadImage {
    pub manifest_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Value,
    pub config_bytes: Vec<u8>,
    pub config: Value,
}

impl ReadImage {
    /// The config's `rootfs.diff_ids`.
    pub fn diff_ids(&self) -> Vec<String> {
        self.config["rootfs"]["diff_ids"]
            .as_array()
            .expect("config has rootfs.diff_ids")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// The manifest's layer descriptors.
    pub fn layers(&self) -> Vec<Value> {
        self.manifest["layers"]
            .as_array()
            .expect("manifest has layers")
            .clone()
    }

    /// The `config` object of the image config (Env, Cmd, …).
    pub fn run_config(&self) -> &Value {
        &self.config["config"]
    }

    pub fn env(&self) -> Vec<String> {
        self.run_config()["Env"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }
}

/// An OCI image layout folder, read without stowage.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn open(dir: impl Into<PathBuf>) -> Layout {
        let dir = dir.into();
        let layout: Value = read_json(&dir.join("oci-layout"));
        assert_eq!(
            layout["imageLayoutVersion"],
            "1.0.0",
            "oci-layout in {}",
            dir.display()
        );
        Layout { dir }
    }

    pub fn index(&self) -> Value {
        read_json(&self.dir.join("index.json"))
    }

    /// The bytes of a blob, checked against its digest.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        let path = self.dir.join("blobs/sha256").join(hex);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(
            sha256_hex(&bytes),
            hex,
            "blob {} does not match its digest",
            path.display()
        );
        bytes
    }

    /// The index.json descriptors whose ref.name annotation is `tag`.
    pub fn descriptor(&self, tag: &str) -> Value {
        let index = self.index();
        let found: Vec<&Value> = index["manifests"]
            .as_array()
            .expect("index.json has manifests")
            .iter()
            .filter(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one descriptor tagged {tag:?} in {index}"
        );
        found[0].clone()
    }

    /// The image tagged `tag` (its manifest must be a single image).
    pub fn image(&self, tag: &str) -> ReadImage {
        let desc = self.descriptor(tag);
        self.image_at(desc["digest"].as_str().unwrap())
    }

    pub fn image_at(&self, manifest_digest: &str) -> ReadImage {
        let manifest_bytes = self.blob(manifest_digest);
        let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .expect("manifest has a config");
        let config_bytes = self.blob(config_digest);
        let config = serde_json::from_slice(&config_bytes).unwrap();
        ReadImage {
            manifest_digest: manifest_digest.to_owned(),
            manifest_bytes,
            manifest,
            config_bytes,
            config,
        }
    }

    /// The uncompressed tar of a layer blob, with its diff-id checked.
    pub fn layer_tar(&self, image: &ReadImage, index: usize) -> Vec<u8> {
        let desc = &image.layers()[index];
        let tar = decompress(&self.blob(desc["digest"].as_str().unwrap()));
        assert_eq!(
            sha256_digest(&tar),
            image.diff_ids()[index],
            "layer {index}'s diff-id does not match its tar"
        );
        tar
    }
}

pub fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every member of a tar (gzip-wrapped or not), by name. Test archives are
/// small, so they are read whole.
pub fn tar_members(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let data = decompress(bytes);
    let mut archive = tar::Archive::new(data.as_slice());
    let mut map = BTreeMap::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("a tar entry");
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let name = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        map.insert(name, content);
    }
    map
}

/// A docker-save tarball, read without stowage: `manifest.json` and the
/// files it names.
pub struct DockerArchive {
    pub members: BTreeMap<String, Vec<u8>>,
}

impl DockerArchive {
    pub fn open(path: &Path) -> DockerArchive {
        let members = tar_members(&fs::read(path).unwrap());
        DockerArchive { members }
    }

    pub fn manifest(&self) -> Value {
        serde_json::from_slice(
            self.members
                .get("manifest.json")
                .expect("manifest.json in the archive"),
        )
        .unwrap()
    }

    pub fn member(&self, name: &str) -> &[u8] {
        self.members
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from the archive"))
    }

    /// The config of the archive's only image.
    pub fn config(&self) -> Value {
        let manifest = self.manifest();
        assert_eq!(
            manifest.as_array().unwrap().len(),
            1,
            "one image in {manifest}"
        );
        serde_json::from_slice(self.member(manifest[0]["Config"].as_str().unwrap())).unwrap()
    }

    pub fn repo_tags(&self) -> Vec<String> {
        self.manifest()[0]["RepoTags"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }
}

/// One entry of a layer tar, as the layer rules see it.
#[derive(Debug, Clone)]
pub struct TarEntry {
    pub path: Vec<u8>,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub size: u64,
}

/// The entries of an uncompressed tar, in archive order, with PAX and GNU
/// long names resolved.
pub fn tar_entries(tar_bytes: &[u8]) -> Vec<TarEntry> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("a tar") {
        let entry = entry.expect("a tar entry");
        let h = entry.header();
        out.push(TarEntry {
            path: entry.path_bytes().into_owned(),
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
            link: entry.link_name_bytes().map(|l| l.into_owned()),
            size: h.size().unwrap(),
        });
    }
    out
}
