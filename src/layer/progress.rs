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
    use crate::gzip::CompressPool;
    use crate::layer::{
        BaseFolders, Compression, Excludes, KnownDirs, LayerRole, LayerRoot, WriteSettings,
        plan_layer, write_layers,
    };
    use crate::spec::Owner;
    use crate::store::Store;

    /// Every report, as text, in the order it came.
    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl LayerProgress for Log {
        fn started(&self, name: &str, planned_bytes: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{name} started {planned_bytes}"));
        }
        fn advanced(&self, name: &str, bytes: u64) {
            self.0.lock().unwrap().push(format!("{name} +{bytes}"));
        }
        fn finished(&self, layer: &BuiltLayer) {
            let how = if layer.cached { "cached" } else { "written" };
            self.0.lock().unwrap().push(format!("{} {how}", layer.name));
        }
    }

    #[test]
    fn write_layers_reports_each_layer_and_writes_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("app");
        std::fs::create_dir_all(&src).unwrap();
        // 2.5 MiB in one file and a small one: two full batches and a rest.
        std::fs::write(src.join("big"), vec![7u8; 5 * 512 * 1024]).unwrap();
        std::fs::write(src.join("small"), b"hello").unwrap();
        let roots = [LayerRoot {
            source: src,
            target: "/app".into(),
            owner: Owner { uid: 0, gid: 0 },
            mode: None,
        }];
        let plan = plan_layer(
            LayerRole::Files,
            &roots,
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
        .unwrap();
        let pool = CompressPool::new(2);
        let base = BaseFolders::new();
        let settings = WriteSettings {
            compression: Compression::Gzip,
            mtime: 1,
            base_folders: &base,
            pool: &pool,
            progress: None,
            shared: None,
        };
        let silent = write_layers(
            std::slice::from_ref(&plan),
            &Store::open(dir.path().join("a")).unwrap(),
            &settings,
        )
        .unwrap();
        let log = Log::default();
        let settings = WriteSettings {
            progress: Some(&log),
            ..settings
        };
        let store = Store::open(dir.path().join("b")).unwrap();
        let told = write_layers(std::slice::from_ref(&plan), &store, &settings).unwrap();
        assert_eq!(told[0].digest, silent[0].digest, "progress only watches");
        let planned = 5 * 512 * 1024 + 5;
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                format!("files started {planned}"),
                format!("files +{REPORT_EVERY}"),
                format!("files +{REPORT_EVERY}"),
                format!("files +{}", planned - 2 * REPORT_EVERY),
                "files written".to_string(),
            ]
        );
        log.0.lock().unwrap().clear();
        let again = write_layers(std::slice::from_ref(&plan), &store, &settings).unwrap();
        assert!(again[0].cached);
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                format!("files started {planned}"),
                "files cached".to_string()
            ],
            "a cached layer reads nothing and is done at once"
        );
    }

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
