//! `stowage copy`, `push` and `archive`: move an image from any transport to any other, digests kept.

use super::policy::{self as export_policy, Admitted, PolicyRequest};
use super::record::{self, Moved};
use super::sign::{self, Signed, Signer};
use super::{Recorded, Reported, Session, SinkDefaults, keep_failure_record, keep_record};
use crate::error::Error;
use crate::exports::Kind;
use crate::image::{Artifact, Platform};
use crate::reference::{self, ImageRef, Location};
use crate::transport::{self, SinkOptions, Written};

/// One copy, push or archive, as asked.
#[derive(Debug, Clone)]
pub struct TransferCommand {
    pub kind: Kind,
    /// As given (recorded as the export's source).
    pub source: String,
    pub dest: String,
    /// Only this platform of an index.
    pub platform: Option<String>,
    /// Extra tags for a registry destination (`push --tag`).
    pub extra_tags: Vec<String>,
    /// Sign what the registry received (`push --sign-key`).
    pub signer: Option<Signer>,
    /// `--policy` and `--no-overwrite` (copy and push).
    pub policy: PolicyRequest,
}

/// What a copy, push or archive did.
#[derive(Debug)]
pub struct Transferred {
    /// What was read and written.
    pub artifact: Artifact,
    pub written: Vec<Written>,
    /// The line for stdout (`commands::reference_line`).
    pub reference_line: String,
    /// The `docker run` line, when the destination is a registry.
    pub run_command: Option<String>,
    /// The signatures written (`--sign-key`).
    pub signed: Vec<Signed>,
    /// The export policy's warnings, in words.
    pub policy_warnings: Vec<String>,
}

/// Runs a copy or push (I/O) and records it.
pub fn copy(session: &Session, command: &TransferCommand) -> Reported<Transferred> {
    // A request that does not parse exported nothing, so it leaves no record.
    let parsed = reference::parse_location(&command.source)
        .and_then(|s| reference::parse_location(&command.dest).map(|d| (s, d)));
    let (source, dest) = match parsed {
        Ok(pair) => pair,
        Err(e) => return unrecorded(e.into()),
    };
    if command.kind == Kind::Push && !matches!(dest, Location::Registry(_)) {
        return unrecorded(Error::usage(
            format!("`{}` is not a registry destination", command.dest),
            "push to REF or docker://REF; use `stowage copy` for local destinations",
        ));
    }
    let mut destinations = vec![dest.clone()];
    let tagged = tagged_destinations(&dest, &command.extra_tags);
    match tagged {
        Ok(tagged) => destinations.extend(tagged),
        Err(e) => return record_failure(session, command, &destinations, None, e),
    }
    let platform = match command.platform.as_deref().map(Platform::parse).transpose() {
        Ok(platform) => platform,
        Err(e) => return record_failure(session, command, &destinations, None, e.into()),
    };
    let admitted = match admit(session, &command.policy, &destinations) {
        Ok(admitted) => admitted,
        Err(e) => return record_failure(session, command, &destinations, None, e),
    };
    let read = match session.access().and_then(|access| {
        transport::read_source(&source, &access, platform.as_ref(), true).map_err(Error::from)
    }) {
        Ok(read) => read,
        Err(e) => {
            let e = e.context(format!("cannot read {}", command.source));
            return record_failure(session, command, &destinations, None, e);
        }
    };
    let options = match sink_options(platform.unwrap_or_else(Platform::host)) {
        Ok(options) => options,
        Err(e) => return record_failure(session, command, &destinations, Some(&read.artifact), e),
    };
    let started = record::started(record::transfer(
        &Moved {
            kind: command.kind,
            source: &command.source,
            destinations: &destinations,
            artifact: None,
            secret_names: &[],
        },
        None,
    ));
    if let Err(e) = session.begin_export(&started) {
        return record_failure(session, command, &destinations, Some(&read.artifact), e);
    }
    let progress = |reached: &[usize]| session.export_progress(read.artifact.digest(), reached);
    let written = session.access().and_then(|access| {
        transport::write_all_reporting(&destinations, &read, &access, &options, &progress)
            .map_err(Error::from)
    });
    let defaults = SinkDefaults {
        tag: &options.default_tag,
        reference: options.default_reference.as_ref(),
    };
    let reference_line = super::reference_line(&destinations, read.artifact.digest(), &defaults);
    let written = written.map_err(|e| e.context(format!("cannot write {dest}")));
    let signed = match (&written, &command.signer) {
        (Ok(_), Some(signer)) => session.access().and_then(|access| {
            sign::sign_destinations(&access, &destinations, read.artifact.digest(), signer)
        }),
        _ => Ok(Vec::new()),
    };
    let (written, signed) = match signed {
        Ok(signed) => (written, signed),
        Err(e) => (
            Err(e.context(format!("pushed {dest}, but cannot sign it"))),
            Vec::new(),
        ),
    };
    let mut reported = finish(
        session,
        command,
        &destinations,
        (read.artifact, signed),
        written,
        (reference_line, admitted.notes()),
    );
    if let Ok(done) = &mut reported.result {
        done.policy_warnings = admitted.warnings.iter().map(ToString::to_string).collect();
    }
    reported
}

/// A copy or push under the policy: its destinations and tags judged (a
/// copy has no plan, so only `[destinations]` and `overwrite` apply) before
/// the source is read.
fn admit(
    session: &Session,
    request: &PolicyRequest,
    destinations: &[Location],
) -> Result<Admitted, Error> {
    let policy = export_policy::read(request)?;
    let verdict = export_policy::judge(
        session,
        request,
        policy.as_ref(),
        Default::default(),
        destinations,
    )?;
    export_policy::admit(policy.as_ref(), verdict)
}

/// Runs `stowage archive` (I/O): pull from a registry into a docker-save tarball, and record it.
pub fn archive(session: &Session, command: &TransferCommand) -> Reported<Transferred> {
    let reference = match reference::parse_location(&command.source) {
        Ok(Location::Registry(reference)) => reference,
        Ok(_) => {
            return unrecorded(Error::usage(
                format!("`{}` is not a registry image", command.source),
                "give REF or docker://REF; to convert a local image use `stowage copy SRC docker-archive:FILE`",
            ));
        }
        Err(e) => return unrecorded(e.into()),
    };
    let dest = Location::DockerArchive {
        path: command.dest.clone().into(),
        reference: Some(named_for_archive(&reference)),
    };
    let destinations = [dest.clone()];
    let recorded = TransferCommand {
        source: format!("docker://{reference}"),
        ..command.clone()
    };
    let platform = match command.platform.as_deref() {
        Some(text) => Platform::parse(text),
        None => Ok(Platform::host()),
    };
    let platform = match platform {
        Ok(platform) => platform,
        Err(e) => return unrecorded(e.into()),
    };
    let source = Location::Registry(reference.clone());
    let read = match session.access().and_then(|access| {
        transport::read_source(&source, &access, Some(&platform), true).map_err(Error::from)
    }) {
        Ok(read) => read,
        Err(e) => {
            let e = e.context(format!("cannot pull {reference}"));
            return record_failure(session, &recorded, &destinations, None, e);
        }
    };
    let started = record::started(record::transfer(
        &Moved {
            kind: command.kind,
            source: &recorded.source,
            destinations: &destinations,
            artifact: None,
            secret_names: &[],
        },
        None,
    ));
    if let Err(e) = session.begin_export(&started) {
        return record_failure(session, &recorded, &destinations, Some(&read.artifact), e);
    }
    let progress = |reached: &[usize]| session.export_progress(read.artifact.digest(), reached);
    let written = sink_options(platform).and_then(|options| {
        let access = session.access()?;
        transport::write_all_reporting(&destinations, &read, &access, &options, &progress)
            .map_err(|e| Error::from(e).context(format!("cannot write {dest}")))
    });
    let reference_line = reference.with_digest(read.artifact.digest().as_str());
    finish(
        session,
        &recorded,
        &destinations,
        (read.artifact, Vec::new()),
        written,
        (reference_line, Vec::new()),
    )
}

/// The name a docker-save tarball of `reference` carries: its tag (`latest` when it has none), never a digest.
fn named_for_archive(reference: &ImageRef) -> ImageRef {
    let mut named = reference.clone();
    if named.tag.is_none() {
        named.tag = Some("latest".into());
    }
    named.digest = None;
    named
}

/// `dest` under each extra tag; parsing checks each tag as every reference is checked.
fn tagged_destinations(dest: &Location, tags: &[String]) -> Result<Vec<Location>, Error> {
    let Location::Registry(reference) = dest else {
        return Ok(Vec::new());
    };
    tags.iter()
        .map(|tag| {
            let mut tagged = reference.clone();
            tagged.tag = Some(tag.clone());
            tagged.digest = None;
            Ok(reference::parse_location(&tagged.to_string())?)
        })
        .collect()
}

fn sink_options(platform: Platform) -> Result<SinkOptions, Error> {
    Ok(SinkOptions {
        platform,
        mtime: super::source_date_epoch()?.unwrap_or(1),
        default_tag: "latest".into(),
        default_reference: None,
    })
}

/// Records the transfer, its run line, what it wrote and the signatures it added.
fn finish(
    session: &Session,
    command: &TransferCommand,
    destinations: &[Location],
    (artifact, signed): (Artifact, Vec<Signed>),
    written: Result<Vec<Written>, Error>,
    (reference_line, policy_notes): (String, Vec<crate::exports::Note>),
) -> Reported<Transferred> {
    // An archive is a copy for keeping, not a deployment: its record names no secrets.
    let secret_names = match command.kind {
        Kind::Archive => Vec::new(),
        _ => secret_names_of(session, &artifact),
    };
    let moved = Moved {
        kind: command.kind,
        source: &command.source,
        destinations,
        artifact: Some(&artifact),
        secret_names: &secret_names,
    };
    let written = written.map_err(|e| record::transfer_interrupted(&moved, e));
    let mut new = record::transfer(&moved, written.as_ref().err());
    new.notes.extend(sign::notes(&signed));
    new.notes.extend(policy_notes);
    let record = match &written {
        Ok(_) => keep_record(session, &new),
        Err(e) => keep_failure_record(session, &new, e),
    };
    let written = written.map_err(|e| e.recorded_as(record.id()));
    let result = written.map(|written| Transferred {
        run_command: new.run_command.filter(|_| {
            destinations
                .first()
                .is_some_and(|d| matches!(d, Location::Registry(_)))
        }),
        artifact,
        written,
        reference_line,
        signed,
        policy_warnings: Vec::new(),
    });
    Reported { result, record }
}

fn unrecorded<T>(error: Error) -> Reported<T> {
    Reported {
        result: Err(error),
        record: Recorded::Nothing,
    }
}

fn record_failure(
    session: &Session,
    command: &TransferCommand,
    destinations: &[Location],
    artifact: Option<&Artifact>,
    error: Error,
) -> Reported<Transferred> {
    let secret_names = artifact
        .map(|artifact| secret_names_of(session, artifact))
        .unwrap_or_default();
    let moved = Moved {
        kind: command.kind,
        source: &command.source,
        destinations,
        artifact,
        secret_names: &secret_names,
    };
    let error = record::transfer_interrupted(&moved, error);
    let record = keep_failure_record(session, &record::transfer(&moved, Some(&error)), &error);
    Reported {
        result: Err(error.recorded_as(record.id())),
        record,
    }
}

/// Secret names of the build that made the artifact, for a later push's run line.
fn secret_names_of(session: &Session, artifact: &Artifact) -> Vec<String> {
    session.secret_names_for(artifact.digest())
}
