//! The library's error type: every module's typed error in one enum, with exit codes and hints for the CLI.
//!
//! Not a leaf: it names each module's error, so it sits above them, and only
//! `plan`, `commands` and `cli` return it. The modules below return their own
//! errors (a `transport` error is flattened into these variants), which keeps
//! the module graph free of cycles.

use crate::attest::cosign::SignatureError;
use crate::attest::keys::KeyError;
use crate::check::CheckError;
use crate::exports::ExportsError;
use crate::image::{ImageError, Platform};
use crate::interrupt::{Interrupted, Signal};
use crate::inventory::InventoryError;
use crate::layer::LayerError;
use crate::policy::PolicyRefusal;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;
use crate::scan::SecretsFound;
use crate::spec::SpecError;
use crate::store::StoreError;
use crate::transport::TransportError;
use crate::transport::archive::ArchiveError;

/// Anything stowage's library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Exports(#[from] ExportsError),
    /// The start check found that the image would not start.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// A signing or verification key that cannot be used (exit 2: the input is wrong).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Signatures that cannot be written or do not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The export policy (or `--no-overwrite`) refused the export; nothing was written.
    #[error(transparent)]
    Policy(#[from] PolicyRefusal),
    /// The secret scan found something the allow-lists do not cover.
    #[error(transparent)]
    Secrets(#[from] SecretsFound),
    /// The command line asks for something that cannot work.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// A valid request this build of stowage cannot carry out.
    #[error("{message}")]
    Unsupported {
        message: String,
        hint: Option<String>,
    },
    /// The app library would not work in the image as it is (an editable install's code lives elsewhere).
    #[error("{message}")]
    Library { message: String, hint: String },
    #[error("cannot write {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Something failed after some destinations had received the image:
    /// `reached` indexes them among the destinations the command wrote to.
    #[error("{message}")]
    Partial {
        message: String,
        reached: Vec<usize>,
        digest: String,
        #[source]
        source: Box<Error>,
    },
    /// What a command was doing when `source` failed ("cannot build the image described by …").
    #[error("{what}")]
    Context {
        what: String,
        #[source]
        source: Box<Error>,
    },
    /// A signal stopped the work at a safe point.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    /// A signal stopped an export: what it was, which destinations got the
    /// image (`source` says where it stopped), and the record that says so.
    #[error("{what} was interrupted by {}: {}{}", .signal.name(), reach(.reached, .missed), recorded(.record, .reached))]
    Stopped {
        signal: Signal,
        /// `the build of /app/stowage.toml`, `the push of oci:out:1`.
        what: String,
        reached: Vec<String>,
        missed: Vec<String>,
        /// The export record's id, once it is kept.
        record: Option<i64>,
        #[source]
        source: Box<Error>,
    },
}

/// Which destinations a stopped export reached, in words.
fn reach(reached: &[String], missed: &[String]) -> String {
    match (reached.is_empty(), missed.is_empty()) {
        (true, _) => "nothing was pushed or written".into(),
        (false, true) => format!("every destination got the image ({})", reached.join(", ")),
        (false, false) => format!(
            "{} got the image, {} did not",
            reached.join(", "),
            missed.join(", ")
        ),
    }
}

fn recorded(record: &Option<i64>, reached: &[String]) -> String {
    match record {
        Some(id) if !reached.is_empty() => format!(
            "; recorded as export {id}: `stowage exports delete {id} --yes` removes what it reached"
        ),
        Some(id) => format!("; recorded as export {id}"),
        None => String::new(),
    }
}

impl From<TransportError> for Error {
    fn from(error: TransportError) -> Error {
        match error {
            TransportError::Archive(e) => Error::Archive(e),
            TransportError::Registry(e) => Error::Registry(e),
            TransportError::Image(e) => Error::Image(e),
            TransportError::Store(e) => Error::Store(e),
            TransportError::Usage { message, hint } => Error::Usage {
                message,
                hint: Some(hint),
            },
            TransportError::Interrupted(e) => Error::Interrupted(e),
            TransportError::Partial(partial) => Error::Partial {
                message: partial.to_string(),
                reached: partial.reached,
                digest: partial.digest.to_string(),
                source: Box::new(Error::from(*partial.source)),
            },
            TransportError::NothingWritten(nothing) => {
                let message = nothing.to_string();
                Error::from(*nothing.source).context(message)
            }
        }
    }
}

impl Error {
    /// 2 for problems with the spec or the command line, 128 plus the
    /// signal's number for an interrupted export (130, 143), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Stopped { signal, .. } | Error::Interrupted(Interrupted { signal }) => {
                signal.exit_code()
            }
            Error::Context { source, .. } | Error::Partial { source, .. } => source.exit_code(),
            Error::Spec(_) | Error::Reference(_) | Error::Usage { .. } | Error::Key(_) => 2,
            Error::Image(ImageError::BadPlatform(_)) => 2,
            _ => 1,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        self.specific_hint().or_else(|| {
            disk_full(self).then(|| {
                "a disk is full (nothing was left half-written): free some space, or point STOWAGE_CACHE_DIR (the store) or the destination at a larger disk".into()
            })
        })
    }

    fn specific_hint(&self) -> Option<String> {
        match self {
            Error::Context { source, .. } => source.specific_hint(),
            Error::Partial { source, .. } => {
                let undo = "`stowage exports list` shows which destinations hold the image, and `stowage exports delete ID --yes` removes exactly those";
                Some(match source.hint() {
                    Some(hint) => format!("{hint}; {undo}"),
                    None => undo.to_string(),
                })
            }
            Error::Spec(e) => e.hint().map(str::to_string),
            Error::Reference(e) => e.hint(),
            Error::Layer(e) => e.hint(),
            Error::Inventory(_) => Some(
                "make the library's metadata files readable by this user, or add them to `exclude`"
                    .into(),
            ),
            Error::Store(e) => e.hint(),
            Error::Archive(e) => e.hint(),
            Error::Registry(e) => e.hint(),
            Error::Secrets(e) => Some(e.hint()),
            Error::Policy(_) => Some(
                "nothing was written or pushed; change what the violations name, or ask the policy's owner; `stowage check --policy FILE` lists them without exporting"
                    .into(),
            ),
            Error::Exports(e) => e.hint(),
            Error::Check(e) => e.hint(),
            Error::Key(e) => Some(e.hint()),
            Error::Signature(e) => Some(e.hint()),
            Error::Image(ImageError::BadPlatform(input)) => Some(Platform::hint_for(input)),
            Error::Image(ImageError::NoPlatform { .. }) => Some(
                "pick one of the available platforms with --platform or `platform` in the spec"
                    .into(),
            ),
            Error::Usage { hint, .. } | Error::Unsupported { hint, .. } => hint.clone(),
            Error::Library { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }

    /// Wraps the error with what was being done, shown first with the error as its cause.
    pub fn context(self, what: impl Into<String>) -> Error {
        Error::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }

    /// Which destinations hold the image when something failed after they
    /// got it: their indices, and the image's digest.
    pub fn partial_write(&self) -> Option<(&[usize], &str)> {
        match self {
            Error::Context { source, .. } | Error::Stopped { source, .. } => source.partial_write(),
            Error::Partial {
                reached, digest, ..
            } => Some((reached, digest)),
            _ => None,
        }
    }

    /// The signal that stopped the export, when this is an interrupted one.
    pub fn stopped_by(&self) -> Option<Signal> {
        match self {
            Error::Stopped { signal, .. } => Some(*signal),
            _ => None,
        }
    }

    /// An interrupted export's error, naming the record kept of it.
    pub fn recorded_as(mut self, id: Option<i64>) -> Error {
        if let Error::Stopped { record, .. } = &mut self {
            *record = id;
        }
        self
    }

    /// The policy's refusal, when that is what stopped the export.
    pub fn policy_refusal(&self) -> Option<&PolicyRefusal> {
        match self {
            Error::Context { source, .. } => source.policy_refusal(),
            Error::Policy(refusal) => Some(refusal),
            _ => None,
        }
    }

    /// The error and its causes on one line, as an export record keeps it.
    pub fn one_line(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }

    pub(crate) fn usage(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// Whether an I/O error somewhere in the chain says the disk is full.
fn disk_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
        {
            return true;
        }
        current = e.source();
    }
    false
}
