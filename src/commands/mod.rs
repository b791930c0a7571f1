//! The use cases, one per file: each opens what it needs once, does one job, and returns an outcome for `cli` to print.
//!
//! Not for parsing arguments or printing: a command takes typed input and
//! returns a typed outcome (and, for exports, what happened to the export
//! record), so the same use case can be driven by the CLI or by a test.

pub mod build;
pub mod exports;
pub mod init;
pub mod inspect;
pub mod login;
pub mod record;
pub mod run_command;
mod start_check;
pub mod transfer;

use std::sync::OnceLock;

use crate::error::Error;
use crate::exports::{Exports, ExportsError, NewExport};
use crate::registry::{Registry, RegistryOptions};
use crate::store::{self, Store};
use crate::transport::Context;

/// The store and the registry client, each opened on first use and then shared by the whole command.
pub struct Session {
    options: RegistryOptions,
    store: OnceLock<Store>,
    registry: OnceLock<Registry>,
}

impl Session {
    /// A session whose registry client will use `options`; nothing is opened yet.
    pub fn new(options: RegistryOptions) -> Session {
        Session {
            options,
            store: OnceLock::new(),
            registry: OnceLock::new(),
        }
    }

    /// The store and registry client, opening them the first time (I/O).
    pub fn context(&self) -> Result<Context<'_>, Error> {
        let store = match self.store.get() {
            Some(store) => store,
            None => {
                let opened = Store::open(store::default_store_root())?;
                self.store.get_or_init(|| opened)
            }
        };
        Ok(Context {
            store,
            registry: self.registry()?,
        })
    }

    /// The registry client alone (I/O: none until a request is sent).
    pub fn registry(&self) -> Result<&Registry, Error> {
        if let Some(registry) = self.registry.get() {
            return Ok(registry);
        }
        let made = Registry::new(self.options.clone())?;
        Ok(self.registry.get_or_init(|| made))
    }
}

/// What happened to a command's export record.
#[derive(Debug)]
pub enum Recorded {
    /// The command leaves no record (a dry run, a read-only command).
    Nothing,
    /// Kept under this id.
    Kept(i64),
    /// It could not be written; the export itself stands.
    NotKept(ExportsError),
}

/// A command's result together with what happened to its export record.
#[derive(Debug)]
pub struct Reported<T> {
    pub result: Result<T, Error>,
    pub record: Recorded,
}

/// Adds the export record (I/O); a record that cannot be written never fails the export.
fn keep_record(new: &NewExport) -> Recorded {
    match Exports::open_default().and_then(|mut exports| exports.record(new)) {
        Ok(id) => Recorded::Kept(id),
        Err(e) => Recorded::NotKept(e),
    }
}

/// `value` as indented JSON, for `--json` output (serde writes it; the CLI only prints it).
pub fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `SOURCE_DATE_EPOCH`, when set: the time every reproducible output carries.
pub fn source_date_epoch() -> Result<Option<u64>, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().parse().map_err(|_| {
            Error::usage(
                format!("SOURCE_DATE_EPOCH=`{text}` is not a whole number of seconds"),
                "set it to seconds since 1970, e.g. $(git log -1 --format=%ct), or unset it",
            )
        })?)),
        _ => Ok(None),
    }
}
