//! conda packages: one `conda-meta/<name>-<version>-<build>.json` record each.
//!
//! File paths in a record are relative to the environment's root (the folder
//! holding `conda-meta`). The hash that identifies a published file is the
//! hash of its bytes as installed: `sha256_in_prefix` when conda rewrote the
//! prefix in it, else `sha256`.

use serde::Deserialize;

use super::license;
use super::locate::{FileIndex, Found, ReadState, normalise, split_last};
use super::purl::purl;
use super::{Ecosystem, FileKey, InventoryError, Package, PrefixedFile, new_package};

/// The fields of a conda-meta record stowage uses; others are ignored.
#[derive(Debug, Deserialize)]
struct Record {
    name: Option<String>,
    version: Option<String>,
    build: Option<String>,
    channel: Option<String>,
    schannel: Option<String>,
    license: Option<String>,
    url: Option<String>,
    files: Option<Vec<String>>,
    paths_data: Option<PathsData>,
}

#[derive(Debug, Deserialize)]
struct PathsData {
    #[serde(default)]
    paths: Vec<PathEntry>,
}

#[derive(Debug, Deserialize)]
struct PathEntry {
    #[serde(rename = "_path")]
    path: String,
    path_type: Option<String>,
    sha256: Option<String>,
    sha256_in_prefix: Option<String>,
    prefix_placeholder: Option<String>,
    file_mode: Option<String>,
}

/// Reads every `conda-meta/*.json` record the scan found.
pub(super) fn read_packages(
    cx: &mut ReadState,
    found: &Found,
) -> Result<Vec<Package>, InventoryError> {
    let mut packages = Vec::new();
    for path in &found.conda_records {
        let Some(bytes) = cx.read_metadata(path)? else {
            continue;
        };
        let record: Record = match serde_json::from_slice(&bytes) {
            Ok(record) => record,
            Err(error) => {
                cx.warn(path, format_args!("not a conda-meta record ({error})"));
                continue;
            }
        };
        let (Some(name), Some(version)) = (record.name.clone(), record.version.clone()) else {
            cx.warn(path, "no name or version");
            continue;
        };
        let root = env_root(path);
        // Records from old conda lack `channel`; the package URL's folder names it.
        let from_url = record.url.as_deref().map(|url| split_last(url).0);
        let channel = record
            .channel
            .as_deref()
            .or(record.schannel.as_deref())
            .or(from_url)
            .and_then(channel_name);
        let license_files = record_license_files(root, &record, &cx.files);
        let (files, prefixed) = record_files(root, record.files, record.paths_data, &cx.files);
        let mut package = new_package(Ecosystem::Conda, name, version, path, files);
        package.prefixed = prefixed;
        package.purl = purl(
            "conda",
            &package.name,
            &package.version,
            &[("build", record.build.as_deref()), ("channel", channel)],
        );
        package.license = record
            .license
            .filter(|l| !l.trim().is_empty())
            .map(|text| license::free_text(&text).unwrap_or(text));
        package.license_files = license_files;
        package.installer = Some("conda".to_owned());
        packages.push(package);
    }
    Ok(packages)
}

/// The walked license files a record lists in the places packages keep
/// theirs: a dist-info (a Python package built by conda), `info/licenses/`
/// and `share/licenses/`. License files deeper in a package are its
/// vendored code's, not its own.
fn record_license_files(env_root: &str, record: &Record, walked: &FileIndex) -> Vec<String> {
    let listed = record
        .paths_data
        .iter()
        .flat_map(|data| data.paths.iter().map(|entry| entry.path.as_str()))
        .chain(record.files.iter().flatten().map(String::as_str));
    let mut found: Vec<String> = listed
        .filter(|path| {
            let (folder, name) = split_last(path);
            license::is_license_file_name(name)
                && (folder.contains(".dist-info")
                    || folder.starts_with("info/licenses")
                    || folder.starts_with("share/licenses/"))
        })
        .filter_map(|path| normalise(env_root, path))
        .filter(|path| walked.contains(path))
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// The keys of the walked files a record lists (`paths_data`, then `files`),
/// and those that embed the prefix.
fn record_files(
    env_root: &str,
    files: Option<Vec<String>>,
    paths_data: Option<PathsData>,
    walked: &FileIndex,
) -> (Vec<FileKey>, Vec<PrefixedFile>) {
    let mut keys = Vec::new();
    let mut prefixed = Vec::new();
    for entry in paths_data.map(|data| data.paths).unwrap_or_default() {
        if entry.path_type.as_deref() == Some("directory") {
            continue;
        }
        let Some(key) = normalise(env_root, &entry.path).and_then(|path| walked.key_of(&path))
        else {
            continue;
        };
        keys.push(key);
        if entry.prefix_placeholder.is_some_and(|p| !p.is_empty()) {
            prefixed.push(PrefixedFile {
                key,
                binary: entry.file_mode.as_deref() == Some("binary"),
            });
        }
    }
    for file in files.unwrap_or_default() {
        if let Some(key) = normalise(env_root, &file).and_then(|path| walked.key_of(&path)) {
            keys.push(key);
        }
    }
    (keys, prefixed)
}

/// The sha256 a conda record (its JSON `bytes`, in the env at `env_root`)
/// records for the file `rel` as installed: `sha256_in_prefix` when conda
/// rewrote the prefix in it, else `sha256`; none for a softlink.
pub(super) fn recorded_hash(env_root: &str, bytes: &[u8], rel: &str) -> Option<[u8; 32]> {
    let record: Record = serde_json::from_slice(bytes).ok()?;
    record
        .paths_data?
        .paths
        .into_iter()
        .filter(|entry| !matches!(entry.path_type.as_deref(), Some("directory" | "softlink")))
        .find(|entry| normalise(env_root, &entry.path).as_deref() == Some(rel))
        .and_then(|entry| {
            entry
                .sha256_in_prefix
                .as_deref()
                .or(entry.sha256.as_deref())
                .and_then(decode_hex)
        })
}

/// The folder a conda record at `record` (`<env>/conda-meta/<name>.json`) describes.
pub(super) fn env_root(record: &str) -> &str {
    split_last(split_last(record).0).0
}

/// The channel's name from a record's `channel`: `conda-forge` from
/// `https://conda.anaconda.org/conda-forge/linux-64` (a token path segment or
/// the platform subdir never shows), or the name itself.
fn channel_name(channel: &str) -> Option<&str> {
    let path = match channel.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        None => channel,
    };
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() > 1 && parts.last().is_some_and(|last| is_subdir(last)) {
        parts.pop();
    }
    parts.last().copied()
}

/// conda platform subdirs: `noarch`, `linux-64`, `osx-arm64`, `win-64`, …
fn is_subdir(part: &str) -> bool {
    part == "noarch"
        || [
            "linux-",
            "osx-",
            "win-",
            "emscripten-",
            "wasi-",
            "zos-",
            "freebsd-",
        ]
        .iter()
        .any(|os| part.starts_with(os))
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert_eq!(
            channel_name("https://conda.anaconda.org/conda-forge/linux-64"),
            Some("conda-forge")
        );
        assert_eq!(
            channel_name("https://conda.anaconda.org/t/tk-123/conda-forge/noarch/"),
            Some("conda-forge")
        );
        assert_eq!(
            channel_name("https://repo.anaconda.com/pkgs/main/linux-64"),
            Some("main")
        );
        assert_eq!(channel_name("conda-forge"), Some("conda-forge"));
        assert_eq!(channel_name("https://example.com"), None);
        let url = "https://conda.anaconda.org/bioconda/noarch/samtools-1.0-0.tar.bz2";
        assert_eq!(channel_name(split_last(url).0), Some("bioconda"));
    }

    #[test]
    fn hex_hashes() {
        let hex = "ab".repeat(32);
        assert_eq!(decode_hex(&hex), Some([0xab; 32]));
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex(&"g".repeat(64)), None);
    }
}
