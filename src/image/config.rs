//! Config edits as pure functions: the base's config JSON in, the new image's config JSON out.
//!
//! The config is edited as raw JSON, never through a struct, so fields
//! stowage does not model (healthchecks, shells, vendor keys) survive. No
//! I/O here: the caller reads the base and stores the result.

use serde_json::{Map, Value, json};

use super::{ImageError, Platform};
use crate::digest::Digest;

/// The label that carries the names of the variables an image expects when
/// it starts (`[secrets] names`; names only, never values, comma-separated),
/// so `stowage run-command` prints `-e NAME` for each on any machine.
pub const DEPLOY_NAMES_LABEL: &str = "io.github.stowage.deploy-env";

/// The names the image's config lists in [`DEPLOY_NAMES_LABEL`], in order.
pub fn deploy_names(config: &Value) -> Vec<String> {
    let label = config
        .pointer("/config/Labels")
        .and_then(|labels| labels.get(DEPLOY_NAMES_LABEL))
        .and_then(Value::as_str)
        .unwrap_or_default();
    label
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a build changes in the base's run config (the spec's `[app]`, `[env]` and `[labels]`).
#[derive(Debug, Clone, Default)]
pub struct ConfigEdit {
    /// In file order, values unexpanded (`${VAR}` expands against the base's env).
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// Normalised `PORT/PROTO`.
    pub ports: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The layers a build adds, as the config records them.
pub struct AddedLayers<'a> {
    /// Uncompressed digests, in layer order.
    pub diff_ids: &'a [Digest],
    /// One history `created_by` per added layer.
    pub history: &'a [String],
    /// RFC 3339 time for `created` and the history entries.
    pub created: &'a str,
}

/// Applies `edit` and the added layers to the base config: env, entrypoint/cmd,
/// ports, workdir, user, labels, rootfs, history, created.
pub fn edit_config(
    mut config: Value,
    edit: &ConfigEdit,
    platform: &Platform,
    added: &AddedLayers<'_>,
) -> Result<Value, ImageError> {
    let root = config.as_object_mut().ok_or_else(|| ImageError::Invalid {
        what: "base image config".into(),
        problem: "it is not a JSON object".into(),
    })?;
    if !root.get("config").is_some_and(Value::is_object) {
        root.insert("config".into(), json!({}));
    }
    if !root.contains_key("os") {
        root.insert("os".into(), json!(platform.os));
        root.insert("architecture".into(), json!(platform.architecture));
    }
    let run = root
        .get_mut("config")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ImageError::Invalid {
            what: "base image config".into(),
            problem: "`config` is not an object".into(),
        })?;
    edit_run_config(run, edit);
    let rootfs = object_entry(root, "rootfs");
    rootfs.insert("type".into(), json!("layers"));
    let diff_ids = array_entry(rootfs, "diff_ids");
    diff_ids.extend(added.diff_ids.iter().map(|d| json!(d)));
    let history = array_entry(root, "history");
    for created_by in added.history {
        history.push(json!({
            "created": added.created,
            "created_by": created_by,
            "comment": "stowage",
        }));
    }
    root.insert("created".into(), json!(added.created));
    Ok(config)
}

/// The run config (`config` in the image config): env, entrypoint, cmd, ports, workdir, user, labels.
fn edit_run_config(run: &mut Map<String, Value>, edit: &ConfigEdit) {
    let env = merged_env(env_pairs(run.get("Env")), &edit.env);
    if !env.is_empty() {
        run.insert(
            "Env".into(),
            Value::Array(
                env.into_iter()
                    .map(|(k, v)| Value::String(format!("{k}={v}")))
                    .collect(),
            ),
        );
    }
    if let Some(entrypoint) = &edit.entrypoint {
        run.insert("Entrypoint".into(), json!(entrypoint));
        // Docker semantics: a new entrypoint without a command drops the base's Cmd.
        if edit.command.is_none() {
            run.remove("Cmd");
        }
    }
    if let Some(command) = &edit.command {
        run.insert("Cmd".into(), json!(command));
    }
    if !edit.ports.is_empty() {
        let ports = object_entry(run, "ExposedPorts");
        for port in &edit.ports {
            ports.insert(port.clone(), json!({}));
        }
    }
    if let Some(workdir) = &edit.workdir {
        run.insert("WorkingDir".into(), json!(workdir));
    }
    if let Some(user) = &edit.user {
        run.insert("User".into(), json!(user));
    }
    if !edit.labels.is_empty() {
        let labels = object_entry(run, "Labels");
        for (k, v) in &edit.labels {
            labels.insert(k.clone(), json!(v));
        }
    }
}

/// The base's env with the spec's entries set in order, each expanded against what came before.
fn merged_env(mut env: Vec<(String, String)>, edits: &[(String, String)]) -> Vec<(String, String)> {
    for (name, raw) in edits {
        let value = expand_env(raw, &env);
        match env.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => env.push((name.clone(), value)),
        }
    }
    env
}

/// RFC 3339 time of `SOURCE_DATE_EPOCH`, or the epoch.
pub fn created_timestamp(source_date_epoch: Option<u64>) -> String {
    let secs = source_date_epoch.unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm: a date without a date crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Expands `${NAME}` against `env`; an unknown name expands to nothing, as in a Dockerfile.
pub fn expand_env(value: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if let Some((_, v)) = env.iter().rev().find(|(k, _)| k == name) {
                    out.push_str(v);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn env_pairs(list: Option<&Value>) -> Vec<(String, String)> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The array at `key`, made when missing.
fn array_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    if !map.get(key).is_some_and(Value::is_array) {
        map.insert(key.to_string(), json!([]));
    }
    match map.get_mut(key) {
        Some(Value::Array(items)) => items,
        // Just made sure it is an array.
        _ => unreachable!("array_entry inserted an array"),
    }
}

fn object_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    if !map.get(key).is_some_and(Value::is_object) {
        map.insert(key.to_string(), json!({}));
    }
    match map.get_mut(key) {
        Some(Value::Object(inner)) => inner,
        // Just made sure it is an object.
        _ => unreachable!("object_entry inserted an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(created_timestamp(None), "1970-01-01T00:00:00Z");
        assert_eq!(
            created_timestamp(Some(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(created_timestamp(Some(951_782_400)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn env_expansion_uses_earlier_values() {
        let env = vec![("PATH".to_string(), "/usr/bin".to_string())];
        assert_eq!(
            expand_env("/opt/app/bin:${PATH}", &env),
            "/opt/app/bin:/usr/bin"
        );
        assert_eq!(expand_env("${MISSING}x", &env), "x");
        assert_eq!(
            expand_env("$PATH ${unterminated", &env),
            "$PATH ${unterminated"
        );
    }
}
