//! The package split, checked on trees made here with a hand-written inventory.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::*;
use crate::inventory::{Ecosystem, Inventory, Package};
use crate::layer::{Excludes, KnownDirs, LayerRole, LayerRoot, plan_layer};
use crate::spec::Owner;

const SITE: &str = "lib/python3.11/site-packages";

fn write(root: &Path, rel: &str, bytes: usize) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, vec![b'x'; bytes]).unwrap();
}

/// A hand-written inventory whose packages name their files by path; the
/// keys are filled in from the plan's walk by `split`.
#[derive(Clone, Default)]
struct Listed {
    inventory: Inventory,
    /// The files of `inventory.packages[i]`, relative to the library root.
    files: Vec<Vec<String>>,
}

impl Listed {
    fn with_folders(folders: &[&str]) -> Listed {
        Listed {
            inventory: Inventory {
                package_folders: folders.iter().map(|f| (*f).to_owned()).collect(),
                ..Inventory::default()
            },
            files: Vec::new(),
        }
    }

    /// Adds a package at its place in name order.
    fn add(&mut self, name: &str, files: &[&str]) {
        let at = self
            .inventory
            .packages
            .partition_point(|p| p.name.as_str() < name);
        self.inventory.packages.insert(at, package(name));
        self.files
            .insert(at, files.iter().map(|f| (*f).to_owned()).collect());
    }
}

fn package(name: &str) -> Package {
    Package {
        ecosystem: Ecosystem::Python,
        name: name.into(),
        version: "1.0".into(),
        license: None,
        license_concluded: None,
        license_files: Vec::new(),
        purl: format!("pkg:pypi/{name}@1.0"),
        metadata: format!("{SITE}/{name}-1.0.dist-info"),
        files: Vec::new(),
        prefixed: Vec::new(),
        installer: None,
        editable: false,
        editable_location: None,
        shipped_by: None,
    }
}

/// A venv-like library: `count` small packages (one with a `bin/` script), one big one, and unowned files.
fn library(root: &Path, count: usize) -> Listed {
    let mut listed = Listed::with_folders(&[SITE]);
    for i in 0..count {
        let name = format!("pkg{i:02}");
        let mut files = vec![
            format!("{SITE}/{name}/__init__.py"),
            format!("{SITE}/{name}-1.0.dist-info/RECORD"),
        ];
        if i == 0 {
            files.push(format!("bin/{name}"));
        }
        for f in &files {
            write(root, f, 1000 + i);
        }
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        listed.add(&name, &refs);
    }
    let big = format!("{SITE}/big/data.bin");
    write(root, &big, (OWN_LAYER_BYTES + 1) as usize);
    listed.add("big", &[&big]);
    write(root, "pyvenv.cfg", 50);
    write(root, "bin/activate", 500);
    listed
}

fn split(root: &Path, listed: &Listed, max_layers: usize) -> Vec<LayerPlan> {
    let roots = [LayerRoot {
        source: root.to_path_buf(),
        target: "/opt/venv".into(),
        owner: Owner { uid: 0, gid: 0 },
        mode: None,
    }];
    let plan = plan_layer(
        LayerRole::Library,
        &roots,
        &Excludes::default(),
        &mut KnownDirs::new(),
    )
    .unwrap();
    let walked = plan.walked_under("/opt/venv");
    let keys: HashMap<String, u64> = (0..walked.len())
        .map(|at| walked.entry(at))
        .map(|entry| (String::from_utf8(entry.path.to_vec()).unwrap(), entry.key))
        .collect();
    let mut inventory = listed.inventory.clone();
    for (package, files) in inventory.packages.iter_mut().zip(&listed.files) {
        package.files = files.iter().map(|f| keys[f]).collect();
        package.files.sort_unstable();
    }
    plan.split_by_package(&LibrarySplit {
        target: "/opt/venv",
        inventory: &inventory,
        max_layers,
    })
}

fn files_of(layer: &LayerPlan) -> BTreeSet<String> {
    layer
        .entries
        .iter()
        .filter(|e| !matches!(e.kind, EntryKind::Dir))
        .map(|e| String::from_utf8_lossy(layer.paths.get(e.path)).into_owned())
        .collect()
}

#[test]
fn a_package_stays_in_one_layer_with_its_scripts_and_every_layer_has_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = library(dir.path(), 30);
    let layers = split(dir.path(), &inventory, 16);
    assert!(layers.len() > 3 && layers.len() <= 16, "{}", layers.len());
    for (index, layer) in layers.iter().enumerate() {
        assert!(layer.file_count > 0, "{} has no file", layer.name);
        assert!(!layer.parts.is_empty());
        // The role is carried, so nothing needs to read it back out of the name.
        assert_eq!(layer.role, LayerRole::Library);
        assert_eq!(
            layer.name,
            format!("library-{}of{}", index + 1, layers.len())
        );
    }
    let holding = |path: &str| {
        layers
            .iter()
            .position(|l| files_of(l).contains(path))
            .unwrap_or_else(|| panic!("{path} is in no layer"))
    };
    assert_eq!(
        holding(&format!("opt/venv/{SITE}/pkg00/__init__.py")),
        holding("opt/venv/bin/pkg00")
    );
    let big = holding(&format!("opt/venv/{SITE}/big/data.bin"));
    assert_eq!(
        layers[big].parts.len(),
        1,
        "the big package has a layer of its own"
    );
    let unowned = holding("opt/venv/pyvenv.cfg");
    assert_eq!(unowned, holding("opt/venv/bin/activate"));
    assert_eq!(layers[unowned].parts[0].key, GroupKey::Unowned);
    // Every entry is in exactly one layer.
    let total: usize = layers.iter().map(|l| files_of(l).len()).sum();
    let distinct: BTreeSet<String> = layers.iter().flat_map(files_of).collect();
    assert_eq!(total, distinct.len());
}

#[test]
fn adding_a_package_changes_at_most_one_layer() {
    let dir = tempfile::tempdir().unwrap();
    let before_inventory = library(dir.path(), 30);
    let before: Vec<BTreeSet<String>> = split(dir.path(), &before_inventory, 16)
        .iter()
        .map(files_of)
        .collect();
    let mut after_inventory = before_inventory.clone();
    let new = format!("{SITE}/newcomer/__init__.py");
    write(dir.path(), &new, 700);
    after_inventory.add("newcomer", &[&new]);
    let after: Vec<BTreeSet<String>> = split(dir.path(), &after_inventory, 16)
        .iter()
        .map(files_of)
        .collect();
    let replaced = before.iter().filter(|layer| !after.contains(layer)).count();
    assert_eq!(replaced, 1, "adding one small package replaces one layer");
    assert_eq!(after.len(), before.len());
}

#[test]
fn without_metadata_the_children_of_site_packages_are_the_packages() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        write(dir.path(), &format!("{SITE}/pkg{i:02}/mod.py"), 100);
    }
    let layers = split(dir.path(), &Listed::with_folders(&[SITE]), 16);
    assert!(layers.len() > 3, "{}", layers.len());
    let labels: Vec<&str> = layers
        .iter()
        .flat_map(|l| &l.parts)
        .map(|p| p.label.as_str())
        .collect();
    assert!(
        labels.contains(&"lib/python3.11/site-packages/pkg07"),
        "{labels:?}"
    );
}

#[test]
fn with_nothing_recognisable_the_top_level_entries_are_the_groups() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        write(dir.path(), &format!("pkg{i:02}/mod.py"), 100);
    }
    let layers = split(dir.path(), &Listed::default(), 8);
    assert!(layers.len() > 2 && layers.len() <= 8, "{}", layers.len());
    assert!(layers.iter().all(|l| l.file_count > 0));
}

#[test]
fn one_layer_when_asked_and_for_a_library_of_one_package() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = library(dir.path(), 5);
    assert_eq!(split(dir.path(), &inventory, 1).len(), 1);
    let small = tempfile::tempdir().unwrap();
    write(small.path(), &format!("{SITE}/only/a.py"), 10);
    let mut only = Listed::with_folders(&[SITE]);
    only.add("only", &[&format!("{SITE}/only/a.py")]);
    let layers = split(small.path(), &only, 16);
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].file_count, 1);
}

#[test]
fn an_empty_folder_is_kept_in_some_layer() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = library(dir.path(), 10);
    fs::create_dir_all(dir.path().join("share/empty")).unwrap();
    let layers = split(dir.path(), &inventory, 16);
    let holders = layers
        .iter()
        .filter(|l| l.find(b"opt/venv/share/empty").is_some())
        .count();
    assert_eq!(holders, 1);
}
