//! How layer writing reports its progress: the `LayerProgress` trait, and the batching that keeps those reports off the read loop.
//!
//! The layer writer reads every byte of every file, so a report per read
//! (a virtual call, and a lock in most displays) would show in the build
//! benchmark. Reads add to a plain counter instead, and only every
//! `REPORT_EVERY` bytes, and once at the end of the layer, is it handed on.

use std::cell::Cell;

use super::BuiltLayer;

/// Bytes read between two `advanced` reports: at 1 GB/s about a thousand
/// reports a second, fine-grained for a display and cheap for the writer.
pub const REPORT_EVERY: u64 = 1024 * 1024;

/// Receives the progress of the layers being written, from several threads at once.
pub trait LayerProgress: Sync {
    /// Work on the layer `name` begins; it holds `planned_bytes` of file content.
    fn started(&self, name: &str, planned_bytes: u64);
    /// `bytes` more of the layer's file content were read (in batches, see `REPORT_EVERY`).
    fn advanced(&self, name: &str, bytes: u64);
    /// The layer is in the store; `layer.cached` says it came from the layer
    /// cache, and then all its planned bytes count as done.
    fn finished(&self, layer: &BuiltLayer);
}

/// Counts one layer's bytes read and hands them on in batches.
pub(super) struct Ticker<'a> {
    progress: &'a dyn LayerProgress,
    name: &'a str,
    pending: Cell<u64>,
}

impl<'a> Ticker<'a> {
    pub(super) fn new(progress: &'a dyn LayerProgress, name: &'a str) -> Ticker<'a> {
        Ticker {
            progress,
            name,
            pending: Cell::new(0),
        }
    }

    /// `bytes` more were read: an addition and a comparison, and a report once a batch is full.
    #[inline]
    pub(super) fn add(&self, bytes: u64) {
        let pending = self.pending.get() + bytes;
        if pending >= REPORT_EVERY {
            self.progress.advanced(self.name, pending);
            self.pending.set(0);
        } else {
            self.pending.set(pending);
        }
    }

    /// Reports what is left of the last batch.
    pub(super) fn flush(&self) {
        let pending = self.pending.replace(0);
        if pending > 0 {
            self.progress.advanced(self.name, pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Calls(Mutex<Vec<u64>>);

    impl LayerProgress for Calls {
        fn started(&self, _: &str, _: u64) {}
        fn advanced(&self, _: &str, bytes: u64) {
            self.0.lock().unwrap().push(bytes);
        }
        fn finished(&self, _: &BuiltLayer) {}
    }

    #[test]
    fn reads_are_reported_in_batches_and_the_rest_at_the_end() {
        let calls = Calls::default();
        let ticker = Ticker::new(&calls, "app");
        for _ in 0..300 {
            ticker.add(8192);
        }
        // 300 reads of 8 KiB: two full batches of 1 MiB, then the rest.
        assert_eq!(*calls.0.lock().unwrap(), vec![REPORT_EVERY, REPORT_EVERY]);
        ticker.flush();
        ticker.flush();
        let total: u64 = calls.0.lock().unwrap().iter().sum();
        assert_eq!(total, 300 * 8192);
        assert_eq!(calls.0.lock().unwrap().len(), 3);
    }
}
