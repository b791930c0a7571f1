//! `stowage cache prune` and `stowage cache info`: the blob store kept within bounds, and what it holds.

use super::Session;
use crate::error::Error;
use crate::store::{PruneReport, PruneRules, StoreInfo};

/// Removes least-recently-used blobs by `rules`, never one a running build or export holds (I/O).
pub fn prune(session: &Session, rules: &PruneRules) -> Result<PruneReport, Error> {
    let access = session.access()?;
    Ok(access.store.prune(rules)?)
}

/// Prunes the store to `max_size` after a build (`STOWAGE_CACHE_MAX_SIZE`);
/// the build's own blobs are held by this process, so they stay.
pub fn prune_after_build(session: &Session, max_size: u64) -> Result<PruneReport, Error> {
    let rules = PruneRules {
        max_size: Some(max_size),
        ..PruneRules::default()
    };
    prune(session, &rules)
}

/// The store's size, blob count and each cache's records (I/O: metadata only).
pub fn info(session: &Session) -> Result<StoreInfo, Error> {
    let access = session.access()?;
    Ok(access.store.info()?)
}
