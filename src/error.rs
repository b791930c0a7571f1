//! The library's error type: one variant per module, with exit codes and hints for the CLI.

use crate::exports::ExportsError;
use crate::image::ImageError;
use crate::layer::LayerError;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;
use crate::scan::SecretsFound;
use crate::spec::SpecError;
use crate::store::StoreError;
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
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Exports(#[from] ExportsError),
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
    #[error("cannot write {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// 2 for problems with the spec or the command line, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spec(_) | Error::Reference(_) | Error::Usage { .. } => 2,
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
            Error::Spec(e) => e.hint().map(str::to_string),
            Error::Reference(e) => e.hint(),
            Error::Layer(e) => e.hint(),
            Error::Store(e) => e.hint(),
            Error::Archive(e) => e.hint(),
            Error::Registry(e) => e.hint(),
            Error::Secrets(e) => Some(e.hint()),
            Error::Exports(e) => e.hint(),
            Error::Image(ImageError::NoPlatform { .. }) => Some(
                "pick one of the available platforms with --platform or `platform` in the spec"
                    .into(),
            ),
            Error::Usage { hint, .. } | Error::Unsupported { hint, .. } => hint.clone(),
            _ => None,
        }
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
