//! What a build tells its caller while it runs (the CLI shows it; a test may ignore it).

use crate::layer::LayerProgress;
use crate::plan::BuildPlan;

/// What a build tells its caller while it runs.
pub trait BuildEvents {
    /// The plan is made; nothing has been read or written yet.
    fn planned(&self, plan: &BuildPlan);

    /// Where the layer writer reports the layers' progress; None (the default) reports nothing.
    fn layer_progress(&self) -> Option<&dyn LayerProgress> {
        None
    }

    /// Something the user should hear about that does not stop the build (the default says nothing).
    fn warning(&self, _message: &str) {}

    /// `--dry-run`, before its checks: what a build checks that it will not (the default says nothing).
    fn not_checked(&self, _what: &[&str]) {}
}
