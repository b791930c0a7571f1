//! Python packages: `*.dist-info` (METADATA, RECORD, INSTALLER, direct_url.json), `*.egg-info`, and a venv's `pyvenv.cfg`.
//!
//! RECORD paths are relative to the folder that holds the dist-info (a
//! `site-packages` or a `pip --target` folder); entries such as
//! `../../../bin/jupyter-lab` are resolved against it, and ones that leave the
//! library root are left out.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::license;
use super::locate::{FileIndex, Found, ReadState, normalise, split_last};
use super::{Ecosystem, FileKey, InventoryError, Package, VenvConfig, new_package};

/// RECORD writes `sha256=` in URL-safe base64 without padding; some tools pad it.
const RECORD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Licenses longer than this in `License:` are a license text, not a name.
const SHORT_LICENSE: usize = 100;

/// Reads every dist-info and egg-info the scan found.
pub(super) fn read_packages(
    cx: &mut ReadState,
    found: &Found,
) -> Result<Vec<Package>, InventoryError> {
    let mut packages = read_dist_infos(cx, &found.dist_infos)?;
    for dir in &found.egg_info_dirs {
        packages.extend(read_egg_info_dir(cx, dir)?);
    }
    for file in &found.egg_info_files {
        packages.extend(read_egg_info_file(cx, file)?);
    }
    Ok(packages)
}

/// Below this many dist-infos one thread reads them: a thread costs more than it saves.
const DIST_INFOS_A_THREAD: usize = 64;

/// Reads the dist-infos, several threads each taking a run of them when
/// there are many (a RECORD row costs a path search in the walk); the
/// packages and warnings come out in `dirs` order whatever the threads do.
fn read_dist_infos(cx: &mut ReadState, dirs: &[&str]) -> Result<Vec<Package>, InventoryError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(dirs.len() / DIST_INFOS_A_THREAD)
        .clamp(1, 4);
    let read_run = |cx: &mut ReadState, run: &[&str]| -> Result<Vec<Package>, InventoryError> {
        let mut packages = Vec::with_capacity(run.len());
        for dir in run {
            packages.extend(read_dist_info(cx, dir)?);
        }
        Ok(packages)
    };
    if threads == 1 {
        return read_run(cx, dirs);
    }
    let runs: Vec<&[&str]> = dirs.chunks(dirs.len().div_ceil(threads)).collect();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|run| {
                let mut forked = cx.fork();
                scope.spawn(move || read_run(&mut forked, run).map(|p| (p, forked.warnings)))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut packages = Vec::with_capacity(dirs.len());
    for result in results {
        let (read, warnings) = result?;
        packages.extend(read);
        cx.warnings.extend(warnings);
    }
    Ok(packages)
}

/// Reads the root's `pyvenv.cfg`.
pub(super) fn read_venv(cx: &mut ReadState) -> Result<Option<VenvConfig>, InventoryError> {
    Ok(cx.read_text("pyvenv.cfg")?.map(|text| parse_pyvenv(&text)))
}

fn read_dist_info(cx: &mut ReadState, dir: &str) -> Result<Option<Package>, InventoryError> {
    let metadata_path = format!("{dir}/METADATA");
    if !cx.files.contains(&metadata_path) {
        cx.warn(dir, "no METADATA file");
        return Ok(None);
    }
    let Some(text) = cx.read_text(&metadata_path)? else {
        return Ok(None);
    };
    let Some(core) = CoreMetadata::parse(&text) else {
        cx.warn(&metadata_path, "no Name or Version");
        return Ok(None);
    };
    let record_path = format!("{dir}/RECORD");
    let mut files = Vec::new();
    if cx.files.contains(&record_path)
        && let Some(record) = cx.read_text(&record_path)?
    {
        files = parse_record(split_last(dir).0, &record, &cx.files);
    }
    // The walked files in the metadata folder are its package's, whatever RECORD says.
    files.extend(cx.files.keys_under(dir));
    let mut package = core.into_package(dir, files);
    package.license_files = license_files(cx, dir);
    let installer_path = format!("{dir}/INSTALLER");
    let installer = cx.read_if_walked(&installer_path)?;
    if let Some(installer) = installer {
        let installer = String::from_utf8_lossy(&installer);
        package.installer = installer
            .lines()
            .next()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
    }
    let direct_url_path = format!("{dir}/direct_url.json");
    let direct_url = cx.read_if_walked(&direct_url_path)?;
    if let Some(bytes) = direct_url {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(value) => {
                package.editable =
                    value.pointer("/dir_info/editable") == Some(&serde_json::Value::Bool(true));
                if package.editable {
                    package.editable_location = value
                        .get("url")
                        .and_then(serde_json::Value::as_str)
                        .and_then(|url| url.strip_prefix("file://"))
                        .map(|path| path.trim_end_matches('/').to_owned());
                }
            }
            Err(error) => cx.warn(&direct_url_path, format_args!("not JSON ({error})")),
        }
    }
    Ok(Some(package))
}

fn read_egg_info_dir(cx: &mut ReadState, dir: &str) -> Result<Option<Package>, InventoryError> {
    let pkg_info_path = format!("{dir}/PKG-INFO");
    let Some(text) = cx.read_text(&pkg_info_path)? else {
        return Ok(None);
    };
    let Some(core) = CoreMetadata::parse(&text) else {
        cx.warn(&pkg_info_path, "no Name or Version");
        return Ok(None);
    };
    let mut files = Vec::new();
    let installed_path = format!("{dir}/installed-files.txt");
    if cx.files.contains(&installed_path)
        && let Some(installed) = cx.read_text(&installed_path)?
    {
        files = installed
            .lines()
            .filter_map(|line| normalise(dir, line.trim_end_matches('\r')))
            .filter_map(|path| cx.files.key_of(&path))
            .collect();
    }
    // The walked files in the metadata folder are its package's, whatever RECORD says.
    files.extend(cx.files.keys_under(dir));
    let mut package = core.into_package(dir, files);
    package.license_files = license_files(cx, dir);
    Ok(Some(package))
}

/// The license files in a dist-info or egg-info folder: license-named files
/// anywhere in it (its root, where older wheels put them, or `licenses/`,
/// where PEP 639 does, with the source tree's folders).
fn license_files(cx: &ReadState, dir: &str) -> Vec<String> {
    cx.files
        .under(dir)
        .map(|(path, _)| path)
        .filter(|path| license::is_license_file_name(split_last(path).1))
        .map(str::to_owned)
        .collect()
}

fn read_egg_info_file(cx: &mut ReadState, file: &str) -> Result<Option<Package>, InventoryError> {
    let Some(text) = cx.read_text(file)? else {
        return Ok(None);
    };
    let Some(core) = CoreMetadata::parse(&text) else {
        cx.warn(file, "no Name or Version");
        return Ok(None);
    };
    let files = cx.files.key_of(file).into_iter().collect();
    Ok(Some(core.into_package(file, files)))
}

/// The core metadata fields stowage uses (METADATA, PKG-INFO).
#[derive(Debug, PartialEq, Eq)]
struct CoreMetadata {
    name: String,
    version: String,
    license: Option<String>,
}

/// The license trove classifiers' names (the part after the last `::`),
/// `OSI Approved` alone left out.
fn license_classifiers<'a>(fields: &'a [(&str, String)]) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case("Classifier"))
        .filter_map(|(_, value)| value.strip_prefix("License ::"))
        .map(|rest| rest.rsplit("::").next().unwrap_or(rest).trim())
        .filter(|name| !name.is_empty() && *name != "OSI Approved")
        .collect()
}

/// The declared license: `License-Expression` (PEP 639), else the first of
/// `License:` and the license classifiers that names one SPDX expression,
/// else the text of whichever is there (`BSD`, `BSD License`), for the
/// license files to decide.
fn declared_license(
    expression: Option<&str>,
    text: Option<&str>,
    fields: &[(&str, String)],
) -> Option<String> {
    if let Some(expression) = expression {
        return Some(license::spdx_expression(expression).unwrap_or_else(|| expression.to_owned()));
    }
    let classifiers = license_classifiers(fields);
    text.and_then(license::free_text)
        .or_else(|| license::classifiers(&classifiers))
        .or_else(|| text.map(str::to_owned))
        .or_else(|| (!classifiers.is_empty()).then(|| classifiers.join("; ")))
}

impl CoreMetadata {
    /// Parses the header block (RFC 822 style, continuation lines indented);
    /// `None` without Name or Version.
    fn parse(text: &str) -> Option<CoreMetadata> {
        let mut fields: Vec<(&str, String)> = Vec::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                continue;
            }
            let (key, value) = line.split_once(':')?;
            fields.push((key.trim(), value.trim().to_owned()));
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim())
                .filter(|value| !value.is_empty())
        };
        let text = field("License").filter(|text| {
            !text.contains('\n') && text.len() <= SHORT_LICENSE && *text != "UNKNOWN"
        });
        let license = declared_license(field("License-Expression"), text, &fields);
        Some(CoreMetadata {
            name: field("Name")?.to_owned(),
            version: field("Version")?.to_owned(),
            license,
        })
    }

    fn into_package(self, metadata: &str, files: Vec<FileKey>) -> Package {
        let mut package = new_package(Ecosystem::Python, self.name, self.version, metadata, files);
        package.license = self.license;
        package
    }
}

/// The keys of the walked files RECORD's rows (`path,hash,size`, csv)
/// name; `base` is the dist-info's parent.
fn parse_record(base: &str, text: &str, walked: &FileIndex) -> Vec<FileKey> {
    record_rows(base, text, |path| walked.key_of(path))
        .map(|(key, _)| key)
        .collect()
}

/// The sha256 RECORD's text records for the file `rel` (relative to the
/// root), when a row names it; `base` is the dist-info's parent.
pub(super) fn recorded_hash(base: &str, text: &str, rel: &str) -> Option<[u8; 32]> {
    record_rows(base, text, |path| (path == rel).then_some(()))
        .find_map(|((), hash)| hash.strip_prefix("sha256=").and_then(decode_record_hash))
}

/// RECORD's rows whose path, resolved against `base`, `found` accepts, with
/// what it returned and the row's hash field.
fn record_rows<'t, T>(
    base: &str,
    text: &'t str,
    found: impl Fn(&str) -> Option<T>,
) -> impl Iterator<Item = (T, &'t str)> {
    // `pip install --target T` installs under a temporary home and moves its
    // `lib/python/*` into T and `bin/`, `share/` beside them, so RECORD's
    // `../../bin/x` (from `lib/python`) is `T/bin/x`. Paths that leave the
    // folder are tried both ways.
    let target_base = format!("{base}/lib/python");
    let base = base.to_owned();
    text.lines().filter_map(move |line| {
        let (path, hash) = record_row(line.trim_end_matches('\r'))?;
        let plain = normalise(&base, &path);
        if let Some(hit) = plain.as_deref().and_then(&found) {
            return Some((hit, hash));
        }
        if !path.starts_with("../") {
            return None;
        }
        let moved = normalise(&target_base, &path)?;
        Some((found(&moved)?, hash))
    })
}

/// One csv row's path (unquoted, or quoted with `""` escapes) and hash field.
fn record_row(line: &str) -> Option<(String, &str)> {
    if let Some(quoted) = line.strip_prefix('"') {
        let mut path = String::new();
        let mut rest = quoted;
        loop {
            let end = rest.find('"')?;
            path.push_str(&rest[..end]);
            rest = &rest[end + 1..];
            match rest.strip_prefix('"') {
                Some(after) => {
                    path.push('"');
                    rest = after;
                }
                None => break,
            }
        }
        let rest = rest.strip_prefix(',').unwrap_or(rest);
        let hash = rest.split(',').next().unwrap_or("");
        return Some((path, hash));
    }
    // Unquoted: hash and size never hold commas, so split from the right.
    let mut fields = line.rsplitn(3, ',');
    let _size = fields.next()?;
    let hash = fields.next()?;
    let path = fields.next()?;
    (!path.is_empty()).then(|| (path.to_owned(), hash))
}

fn decode_record_hash(encoded: &str) -> Option<[u8; 32]> {
    RECORD_BASE64.decode(encoded.trim()).ok()?.try_into().ok()
}

/// `key = value` lines; unknown keys ignored.
fn parse_pyvenv(text: &str) -> VenvConfig {
    let mut config = VenvConfig::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        match key.trim().to_ascii_lowercase().as_str() {
            "home" => config.home = value,
            "version" | "version_info" => config.version = config.version.take().or(value),
            "command" => config.command = value,
            _ => {}
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_prefers_license_expression_and_drops_license_texts() {
        let text = "Metadata-Version: 2.4\nName: Foo_Bar\nVersion: 1.0\nLicense: MIT\nLicense-Expression: BSD-3-Clause\n\nbody: x\n";
        let core = CoreMetadata::parse(text).unwrap();
        assert_eq!(
            (core.name.as_str(), core.version.as_str()),
            ("Foo_Bar", "1.0")
        );
        assert_eq!(core.license.as_deref(), Some("BSD-3-Clause"));
        let text = "Name: a\nVersion: 2\nLicense: Copyright (c) someone\n        Permission is hereby granted\n";
        assert_eq!(CoreMetadata::parse(text).unwrap().license, None);
        let text = "Name: a\nVersion: 2\nLicense: Copyright (c) someone\n        Permission\nClassifier: Programming Language :: Python\nClassifier: License :: OSI Approved :: MIT License\n";
        assert_eq!(
            CoreMetadata::parse(text).unwrap().license.as_deref(),
            Some("MIT")
        );
        let text = "Name: a\nVersion: 2\nClassifier: License :: OSI Approved :: BSD License\n";
        assert_eq!(
            CoreMetadata::parse(text).unwrap().license.as_deref(),
            Some("BSD License")
        );
        assert_eq!(
            CoreMetadata::parse("Name: a\nVersion: 2\nLicense: MIT\n")
                .unwrap()
                .license
                .as_deref(),
            Some("MIT")
        );
        assert_eq!(CoreMetadata::parse("Name: a\n"), None);
        assert_eq!(CoreMetadata::parse("garbage without colon\n"), None);
    }

    #[test]
    fn record_rows_quoted_and_plain() {
        assert_eq!(
            record_row("six.py,sha256=abc,123"),
            Some(("six.py".to_owned(), "sha256=abc"))
        );
        assert_eq!(
            record_row("a,b.py,sha256=abc,1"),
            Some(("a,b.py".to_owned(), "sha256=abc"))
        );
        assert_eq!(
            record_row("\"a,\"\"b\"\".py\",sha256=x,1"),
            Some(("a,\"b\".py".to_owned(), "sha256=x"))
        );
        assert_eq!(
            record_row("six-1.dist-info/RECORD,,"),
            Some(("six-1.dist-info/RECORD".to_owned(), ""))
        );
        assert_eq!(record_row(""), None);
    }

    #[test]
    fn pyvenv_keys() {
        let config = parse_pyvenv(
            "home = /usr/bin\ninclude-system-site-packages = false\nversion_info = 3.12.3\ncommand = /usr/bin/python3 -m venv /opt/venv\n",
        );
        assert_eq!(config.home.as_deref(), Some("/usr/bin"));
        assert_eq!(config.version.as_deref(), Some("3.12.3"));
        assert_eq!(
            config.command.as_deref(),
            Some("/usr/bin/python3 -m venv /opt/venv")
        );
    }
}
