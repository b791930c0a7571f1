//! `stowage build --dry-run`: the plan, and the checks of a build that read no file contents.
//!
//! A dry run must not say yes where the build says no, so it runs what a
//! build checks before it reads the sources' bytes: the base (that it exists
//! and has the platform), the manifest family, the start check (the base's
//! tar headers and the heads of the few files the program needs, as the
//! build reads them), and the secret scan's by-name rules over the plan's
//! paths. What needs every file's bytes — the secret scan of file contents —
//! it does not run, and says so. It writes no output and records nothing;
//! the base may be fetched into the store, as the build would.

use super::base;
use super::events::BuildEvents;
use super::findings::{self, Findings};
use crate::check::{Checked, StartConfig};
use crate::commands::Session;
use crate::commands::start_check::{self, CheckedBase};
use crate::error::Error;
use crate::image::config::{AddedLayers, edit_config};
use crate::layer::{BaseFolders, PlannedKind};
use crate::plan::BuildPlan;
use crate::scan::{self, Finding};

/// What a build checks that a dry run does not, with the secret scan on.
pub const CONTENT_SCAN: &str = "secret scan of file contents";

/// A dry run: the plan, and what its checks found.
#[derive(Debug)]
pub struct DryRun {
    pub plan: BuildPlan,
    /// What the start check found; None when it was off (`--no-start-check`).
    pub start_check: Option<Checked>,
    /// The by-name findings let through: allowed, or in library files that match their package's recorded hash.
    pub findings: Findings,
    /// The checks that ran, in words.
    pub checked: Vec<&'static str>,
    /// What a build checks that this dry run did not, in words.
    pub not_checked: Vec<&'static str>,
}

/// The checks of a build that read no file contents, over `plan` (I/O: the
/// base's manifest and config, and for the start check its layers' tar
/// headers and a few file heads). A check that fails fails as the build's
/// would, with the same error.
pub fn check(
    session: &Session,
    plan: BuildPlan,
    events: &dyn BuildEvents,
) -> Result<DryRun, Error> {
    let scan_on = plan.layers.iter().any(|l| l.secret_scan.is_some());
    let mut checked = Vec::new();
    let mut not_checked = Vec::new();
    if scan_on {
        checked.push("secret scan of spec values");
        not_checked.push(CONTENT_SCAN);
    }
    events.not_checked(&not_checked);
    // The by-name rules judge files, never the folders above the targets, so
    // they need no base: they run first, and a dry run without the network
    // still finds a key file by its name.
    let found = name_findings(&plan, &BaseFolders::new());
    let findings = findings::check_findings(&plan, found.iter().map(Vec::as_slice))?;
    if scan_on {
        checked.push("secret scan of file names");
    }
    let access = session.access()?;
    let base = base::read_base(&plan, &access)?;
    base::image_format(&plan, &base)?;
    if base.image.is_some() {
        checked.push("base image");
    }
    // Only the start check looks at the folders above the targets.
    let folders = if plan.start_check {
        base::base_folders(&plan, &base, &access)?
    } else {
        BaseFolders::new()
    };
    let added = AddedLayers {
        diff_ids: &[],
        history: &plan.history,
        created: &plan.created,
    };
    let config = edit_config(base.config.clone(), &plan.config, &plan.platform, &added)?;
    let checked_base = CheckedBase {
        image: base.image.as_ref(),
        origin: base.origin.as_ref(),
    };
    let config = StartConfig::from_config(&config);
    let start_check = start_check::check_config(&plan, &checked_base, &folders, &config, &access)?;
    if start_check.is_some() {
        checked.push("start check");
    }
    Ok(DryRun {
        plan,
        start_check,
        findings,
        checked,
        not_checked,
    })
}

/// Each layer's findings by the secret scan's by-name rules, judged from the
/// plan's paths as the layer writer would judge them (every file and hard
/// link of a layer the scan covers); empty for a layer it does not.
fn name_findings(plan: &BuildPlan, folders: &BaseFolders) -> Vec<Vec<Finding>> {
    plan.layers
        .iter()
        .map(|layer| {
            if layer.secret_scan.is_none() {
                return Vec::new();
            }
            layer
                .planned_entries(folders)
                .filter(|e| matches!(e.kind, PlannedKind::File | PlannedKind::HardLink { .. }))
                .filter_map(|e| scan::name_finding(e.path))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::scan::{ScanRules, Scanner};

    /// The dry run's by-name judgement is the one the layer writer's scanner makes.
    #[test]
    fn name_findings_agree_with_the_scanner() {
        for path in [
            "w/.ssh/id_rsa",
            "w/.ssh/id_rsa.pub",
            "home/u/.netrc",
            "w/.aws/credentials",
            "w/.env",
            "app/main.py",
        ] {
            let mut scanner = Scanner::new(&ScanRules::default());
            scanner.file(path.as_bytes()).finish();
            let by_scanner = scanner.into_findings();
            let by_name: Vec<_> = super::scan::name_finding(path.as_bytes())
                .into_iter()
                .collect();
            assert_eq!(by_name, by_scanner, "{path}");
        }
        assert!(super::scan::name_finding(b"w/.ssh/id_rsa").is_some());
    }
}
