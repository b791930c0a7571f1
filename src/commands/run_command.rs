//! `stowage run-command`: the `docker run` line that starts an export, with a `-p` per exposed port and secret placeholders.

use serde_json::Value;

use super::Session;
use crate::error::Error;
use crate::exports::{ExportsError, Status};
use crate::image::Platform;
use crate::reference::{self, ImageRef, Location};

/// The run line for `target`: an export id (its recorded line), or an image
/// reference read now for its exposed ports (I/O).
pub fn run_command_for(session: &Session, target: &str) -> Result<String, Error> {
    let exports = session.journal()?;
    if let Ok(id) = target.parse::<i64>() {
        let record = exports.get(id)?;
        return record.run_command.ok_or_else(|| {
            let why = match record.status {
                Status::Failed => "it failed".to_string(),
                _ => format!(
                    "it went to {}, which docker cannot start from directly",
                    record
                        .destinations
                        .iter()
                        .map(|d| d.destination.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            ExportsError::NoRunCommand {
                id,
                why,
                failed: record.status == Status::Failed,
            }
            .into()
        });
    }
    let transport = reference::parse_location(target)?;
    let host = Platform::host();
    let read = crate::transport::read_source(&transport, &session.access()?, None, false)?;
    let image = read.artifact.runnable_image(&host)?;
    let config = image.config_json()?;
    let shown = match &transport {
        Location::Registry(reference) => reference.with_digest(read.artifact.digest().as_str()),
        Location::DockerArchive { .. } => match read.name.as_deref().map(ImageRef::parse) {
            Some(Ok(name)) => name.familiar(),
            _ => image.config_descriptor().digest.to_string(),
        },
        _ => {
            return Err(Error::usage(
                format!("docker cannot start {target} directly"),
                "give a registry reference or a docker-archive, or an export id from `stowage exports`",
            ));
        }
    };
    let secret_names = exports.secret_names_for(read.artifact.digest().as_str())?;
    Ok(run_command(&shown, &config, &secret_names))
}

/// The `docker run` line for the first destination docker can start from:
/// a registry (`REPO@sha256:…`, pinned), else a docker-archive's name after `docker load`.
pub fn run_command_for_destinations(
    destinations: &[Location],
    digest: &str,
    config: &Value,
    secret_names: &[String],
    name: Option<&ImageRef>,
) -> Option<String> {
    let registry = destinations.iter().find_map(|d| match d {
        Location::Registry(reference) => Some(reference.with_digest(digest)),
        _ => None,
    });
    let loaded = || {
        destinations.iter().find_map(|d| match d {
            Location::DockerArchive { reference, .. } => {
                reference.as_ref().or(name).map(|r| r.familiar())
            }
            _ => None,
        })
    };
    let image = registry.or_else(loaded)?;
    Some(run_command(&image, config, secret_names))
}

/// `docker run -p P:P … -e NAME … IMAGE`: one `-p` per exposed port of the
/// image `config`, and one `-e` per name the image's label lists and per
/// recorded secret name. `-e NAME` passes the caller's variable through
/// (docker leaves it unset when the caller has none, where `-e NAME="$NAME"`
/// would set it empty), and the value never sits in the line itself.
pub fn run_command(image: &str, config: &Value, secret_names: &[String]) -> String {
    let mut ports: Vec<(u32, String, String)> = config
        .pointer("/config/ExposedPorts")
        .and_then(Value::as_object)
        .map(|ports| {
            ports
                .keys()
                .filter_map(|key| {
                    let (number, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
                    let n: u32 = number.parse().ok()?;
                    Some((n, number.to_string(), proto.to_ascii_lowercase()))
                })
                .collect()
        })
        .unwrap_or_default();
    ports.sort();
    let mut line = String::from("docker run");
    for (_, number, proto) in &ports {
        line.push_str(&format!(" -p {number}:{number}"));
        if proto != "tcp" {
            line.push_str(&format!("/{proto}"));
        }
    }
    let mut names = crate::image::config::deploy_names(config);
    for name in secret_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    for name in names {
        line.push_str(&format!(" -e {name}"));
    }
    line.push(' ');
    line.push_str(image);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_command_has_a_port_flag_per_exposed_port_and_secret_placeholders() {
        let config = serde_json::json!({"config": {"ExposedPorts": {"8888/tcp": {}, "53/udp": {}, "10000/tcp": {}}}});
        assert_eq!(
            run_command(
                "localhost:5000/app@sha256:abc",
                &config,
                &["API_TOKEN".to_string()]
            ),
            "docker run -p 53:53/udp -p 8888:8888 -p 10000:10000 -e API_TOKEN localhost:5000/app@sha256:abc"
        );
        // The image's label first (any machine), then the journal's names not in it.
        let labelled = serde_json::json!({"config": {"Labels": {
            crate::image::config::DEPLOY_NAMES_LABEL: "NUVLA_API_KEY,NUVLA_API_SECRET"
        }}});
        assert_eq!(
            run_command(
                "x@sha256:abc",
                &labelled,
                &["NUVLA_API_SECRET".into(), "T".into()]
            ),
            "docker run -e NUVLA_API_KEY -e NUVLA_API_SECRET -e T x@sha256:abc"
        );
        assert_eq!(
            run_command("x@sha256:abc", &Value::Null, &[]),
            "docker run x@sha256:abc"
        );
    }
}
