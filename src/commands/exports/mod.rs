//! `stowage exports`: list the journal, and delete an export from everywhere it went, taking only what it owns.

mod failure;
mod journal;
mod plan;
mod run;
mod scope;

use super::Session;
use crate::error::Error;
use crate::exports::{
    DestinationStatus, ExportRecord, Exports, ExportsError, Filter, JournalLocation, Migrated,
    Status,
};
use journal::Removed;
use run::NotDone;

/// The records `filter` picks, oldest first (I/O).
pub fn list(session: &Session, filter: Filter) -> Result<Vec<ExportRecord>, Error> {
    Ok(session.journal()?.list_filtered(filter)?)
}

/// Copies the session's journal into the journal at `to` (I/O), each record once however often it runs.
pub fn migrate(session: &Session, to: &JournalLocation) -> Result<Migrated, Error> {
    let mut source = session.journal()?;
    let mut target = Exports::open_location(to)?;
    Ok(source.migrate_into(&mut target)?)
}

pub use run::Deleted;
/// What `delete_plan(id)` found: the record's plan, to show before asking and to run.
pub use scope::{Action, DeletePlan, OtherTag, Step};

/// What `delete` did.
#[derive(Debug, Clone)]
pub struct DeleteReport {
    /// Each destination of the export and what happened there.
    pub done: Vec<Deleted>,
    /// Other exports whose every destination the delete took (their tags went with the manifest): marked deleted too.
    pub also_deleted: Vec<i64>,
    /// Other exports that lost some destinations but still hold others.
    pub also_touched: Vec<i64>,
}

/// Plans deleting export `id` (I/O: reads the journal, the registries' tag
/// lists and the layouts' indexes; changes nothing). With `all_tags`, every
/// tag that points at the export's image goes with it.
pub fn delete_plan(session: &Session, id: i64, all_tags: bool) -> Result<DeletePlan, Error> {
    let exports = session.journal()?;
    let record = exports.get(id)?;
    if record.status == Status::Deleted {
        return match deleted_meanwhile(session, &record) {
            true => Ok(DeletePlan {
                id,
                all_tags,
                steps: Vec::new(),
            }),
            false => Err(ExportsError::AlreadyDeleted { id }.into()),
        };
    }
    if record.status == Status::Running {
        return Err(ExportsError::StillRunning {
            id,
            worker: record
                .worker
                .map(|w| format!("{} as pid {}", w.host, w.pid)),
        }
        .into());
    }
    let journal = exports.list(None)?;
    let widened = with_plain_http(session, &record);
    let session = widened.as_ref().unwrap_or(session);
    let access = session.access()?;
    Ok(plan::plan_delete(&record, &journal, &access, all_tags))
}

/// Carries out `plan` (I/O), then marks the record deleted, and every other
/// record whose destinations went with it.
///
/// Each destination loses only what this export owns there: its own tag,
/// or the manifest when no other tag points at it (`--all-tags`: every tag
/// that does). A step the plan refused, or a tag-only delete the registry
/// cannot do, stops the delete before it touches anything else. After a
/// partial delete the record keeps which destinations were cleared, so
/// running it again does the rest.
pub fn delete(session: &Session, plan: &DeletePlan) -> Result<DeleteReport, Error> {
    let id = plan.id;
    let mut exports = session.journal()?;
    let record = exports.get(id)?;
    if record.status == Status::Deleted {
        return match deleted_meanwhile(session, &record) {
            true => Ok(DeleteReport {
                done: Vec::new(),
                also_deleted: Vec::new(),
                also_touched: Vec::new(),
            }),
            false => Err(ExportsError::AlreadyDeleted { id }.into()),
        };
    }
    let refused: Vec<NotDone> = plan
        .steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Refuse { problem, hint } => Some(NotDone {
                destination: step.destination.clone(),
                problem: problem.clone(),
                hint: hint.clone(),
            }),
            _ => None,
        })
        .collect();
    if !refused.is_empty() {
        return Err(incomplete(id, &[], &refused, "nothing was deleted"));
    }
    let widened = with_plain_http(session, &record);
    let session = widened.as_ref().unwrap_or(session);
    let access = session.access()?;
    let outcome = run::run_steps(id, &plan.steps, &access);
    let mut destinations = record.destinations.clone();
    for (index, _) in &outcome.done {
        if let Some(dest) = destinations.get_mut(*index)
            && dest.holds_image()
        {
            dest.status = Some(DestinationStatus::Deleted);
        }
    }
    exports.set_destinations(id, &destinations)?;
    let (also_deleted, also_touched) = mark_others(&mut exports, id, &outcome.removed)?;
    let done: Vec<Deleted> = outcome.done.into_iter().map(|(_, d)| d).collect();
    if !outcome.not_done.is_empty() {
        return Err(incomplete(id, &done, &outcome.not_done, ""));
    }
    // Another delete of this export may have finished first: it is deleted either way.
    match exports.mark_deleted(id) {
        Ok(()) | Err(ExportsError::AlreadyDeleted { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(DeleteReport {
        done,
        also_deleted,
        also_touched,
    })
}

/// True when another delete of `record` ended after this command began:
/// two deletes at once (two workers, a retried job) both succeed, while a
/// delete of an export deleted before is refused as already deleted.
fn deleted_meanwhile(session: &Session, record: &ExportRecord) -> bool {
    // Both are RFC 3339 UTC with milliseconds, so they compare as text.
    record
        .deleted_time
        .as_deref()
        .is_some_and(|deleted| deleted >= session.began())
}

/// Marks what `removed` took from other records (I/O): their destinations, and the records left with none.
fn mark_others(
    exports: &mut Exports,
    id: i64,
    removed: &[Removed],
) -> Result<(Vec<i64>, Vec<i64>), Error> {
    if removed.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let journal = exports.list(None)?;
    let mut deleted = Vec::new();
    let mut touched = Vec::new();
    for (other, destinations, empty) in journal::emptied_by(&journal, id, removed) {
        exports.set_destinations(other, &destinations)?;
        if empty {
            exports.mark_deleted(other)?;
            deleted.push(other);
        } else {
            touched.push(other);
        }
    }
    Ok((deleted, touched))
}

/// The error for a delete that did not finish: what was done, what was not, and the hints.
fn incomplete(id: i64, done: &[Deleted], not_done: &[NotDone], note: &str) -> Error {
    let mut report = String::new();
    if !note.is_empty() {
        report.push_str(&format!(" {note}"));
    }
    for d in done {
        report.push_str(&format!("\n  {}: {}", d.destination, d.what));
    }
    for n in not_done {
        report.push_str(&format!("\n  {}: {}", n.destination, n.problem));
    }
    let hints = not_done.iter().map(|n| n.hint.clone()).collect();
    ExportsError::DeleteIncomplete { id, report, hints }.into()
}

/// A session that also reaches over plain HTTP the registries the export reached so, without the flag; None when there are none.
fn with_plain_http(session: &Session, record: &ExportRecord) -> Option<Session> {
    let plain_http: Vec<String> = record
        .destinations
        .iter()
        .filter(|d| d.plain_http)
        .filter_map(super::registry_of)
        .collect();
    (!plain_http.is_empty()).then(|| session.also_insecure(plain_http))
}
