//! The image a build is about to write, looked up lazily: the base's tree, and each added layer's plan searched by path instead of copied.
//!
//! A library layer can hold a million entries while the check resolves a
//! handful of paths, so nothing here grows with the number of files: a
//! lookup binary-searches each added layer from the top down. What the eager
//! `Tree` would get from applying the entries one by one is reproduced from
//! two facts about planned layers: every layer spells out the ancestors of
//! what it holds (a folder it writes replaces a symlink a lower layer had
//! there), and the one folder it names but leaves out is a defaulted
//! ancestor where the base has a symlink or a file. Entries beneath such a
//! folder land where the base's symlink leads; those folders (few: ancestors
//! of the layer's roots) are the only side table.

use std::borrow::Cow;

use super::tree::{Filesystem, Node, Source, Tree};
use crate::layer::{BaseFolder, BaseFolders, LayerPlan, PlannedKind};

/// The base's tree with the build's added layers over it.
pub struct Stack<'a> {
    base: Tree<'static>,
    folders: &'a BaseFolders,
    layers: Vec<Added<'a>>,
}

/// One added layer as the stack looks into it.
struct Added<'a> {
    plan: &'a LayerPlan,
    /// A folder the layer names but leaves out, and the real folder its
    /// entries land in (where the base's symlink there leads), in path order.
    moves: Vec<(&'a [u8], Vec<u8>)>,
}

impl<'a> Stack<'a> {
    /// The image of the base alone (an empty tree for scratch or an unread base).
    pub fn new(base: Tree<'static>, folders: &'a BaseFolders) -> Stack<'a> {
        Stack {
            base,
            folders,
            layers: Vec::new(),
        }
    }

    /// Puts the next added layer on top, as it will be written over the base.
    pub fn push(&mut self, plan: &'a LayerPlan) {
        let moves = plan
            .defaulted_ancestors()
            .filter(|path| self.folders.get(*path) == Some(&BaseFolder::NotDir))
            .filter_map(|path| match self.walk(path) {
                Ok(real) if real != path => Some((path, real)),
                // A file, or a symlink that leads nowhere: the entries stay put.
                _ => None,
            })
            .collect();
        self.layers.push(Added { plan, moves });
    }

    /// What added layer `number` puts at `key`; None when it puts nothing
    /// there, or a hard link to something other than a file.
    fn node_in(&self, number: usize, layer: &Added<'_>, key: &[u8]) -> Option<Node> {
        // Of several entries landing at `key`, the last written wins (entries
        // are written in path order); a left-out folder is no entry.
        let (index, entry) = layer
            .candidates(key)
            .filter_map(|written| layer.plan.find(&written))
            .filter_map(|index| Some((index, layer.plan.planned_entry(index, self.folders)?)))
            .max_by_key(|(index, _)| *index)?;
        let (index, entry) = match entry.kind {
            PlannedKind::HardLink { to } => {
                let index = layer.plan.find(to)?;
                (index, layer.plan.planned_entry(index, self.folders)?)
            }
            _ => (index, entry),
        };
        Some(match entry.kind {
            PlannedKind::Dir => Node::Dir,
            PlannedKind::File => Node::File {
                mode: entry.mode,
                uid: entry.owner.uid,
                gid: entry.owner.gid,
                source: Source::Added {
                    layer: number,
                    entry: index,
                },
            },
            PlannedKind::Symlink { target } => Node::Symlink {
                target: target.into_owned(),
            },
            PlannedKind::HardLink { .. } => return None,
        })
    }

    /// Whether added layer `number` puts a non-folder at a folder above
    /// `key`, which hides whatever the layers below have at `key`.
    fn hides(&self, number: usize, layer: &Added<'_>, key: &[u8]) -> bool {
        let folders = key.iter().enumerate().filter(|(_, b)| **b == b'/');
        for (end, _) in folders {
            match self.node_in(number, layer, &key[..end]) {
                Some(Node::Dir) => {}
                Some(_) => return true,
                // The layer spells out the ancestors of what it holds: with
                // nothing at this folder (and no entry moved), nothing beneath it either.
                None if layer.moves.is_empty() => return false,
                None => {}
            }
        }
        false
    }
}

impl Added<'_> {
    /// Where an entry written at `path` lands: beneath the first left-out
    /// folder above it, in the real folder instead.
    fn landing<'p>(&self, path: &'p [u8]) -> Cow<'p, [u8]> {
        for (folder, real) in &self.moves {
            if let Some(rest) = beneath(path, folder) {
                let mut landed = real.clone();
                landed.extend_from_slice(rest);
                return Cow::Owned(landed);
            }
        }
        Cow::Borrowed(path)
    }

    /// The written paths that may land at `key`: itself, and `key` seen
    /// through each left-out folder whose real folder holds it.
    fn candidates<'k>(&'k self, key: &'k [u8]) -> impl Iterator<Item = Cow<'k, [u8]>> + 'k {
        let moved = self.moves.iter().filter_map(move |(folder, real)| {
            beneath(key, real).map(|rest| {
                let mut written = folder.to_vec();
                written.extend_from_slice(rest);
                Cow::Owned(written)
            })
        });
        std::iter::once(Cow::Borrowed(key))
            .chain(moved)
            .filter(move |written| *self.landing(written) == *key)
    }

    /// Whether entries of this layer land beneath `folder`.
    fn lands_beneath(&self, folder: &[u8]) -> bool {
        // A folder the layer writes is a node, not an implied folder, so only
        // the entries of a left-out folder (it has some: it is an ancestor) make one.
        self.moves
            .iter()
            .any(|(_, real)| beneath(real, folder).is_some())
    }
}

impl Filesystem for Stack<'_> {
    fn node(&self, key: &[u8]) -> Option<Cow<'_, Node>> {
        for (number, layer) in self.layers.iter().enumerate().rev() {
            if let Some(node) = self.node_in(number, layer, key) {
                return Some(Cow::Owned(node));
            }
            if self.hides(number, layer, key) {
                return None;
            }
        }
        self.base.node(key)
    }

    fn has_beneath(&self, folder: &[u8]) -> bool {
        for (number, layer) in self.layers.iter().enumerate().rev() {
            if layer.lands_beneath(folder) {
                return true;
            }
            if self.hides(number, layer, folder) {
                return false;
            }
        }
        self.base.has_beneath(folder)
    }
}

/// What follows `folder` in `path` (from its `/` on, or empty when they are
/// equal); None when `path` is not `folder` or beneath it. The root is above all.
fn beneath<'p>(path: &'p [u8], folder: &[u8]) -> Option<&'p [u8]> {
    if folder.is_empty() {
        return None;
    }
    let rest = path.strip_prefix(folder)?;
    (rest.is_empty() || rest.first() == Some(&b'/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    use super::*;
    use crate::check::tree::{Change, Found, Lookup};
    use crate::layer::{Excludes, KnownDirs, LayerRole, LayerRoot, plan_layer};
    use crate::spec::Owner;

    fn base_file(path: &str, mode: u32) -> Change {
        Change::Put {
            path: path.as_bytes().to_vec(),
            node: Node::File {
                mode,
                uid: 0,
                gid: 0,
                source: Source::Base {
                    layer: 0,
                    member: path.to_string(),
                },
            },
        }
    }

    fn base_member(path: &str, node: Node) -> Change {
        Change::from_member(path.as_bytes().to_vec(), Some(node), None).unwrap()
    }

    fn base_link(path: &str, target: &str) -> Change {
        base_member(
            path,
            Node::Symlink {
                target: target.as_bytes().to_vec(),
            },
        )
    }

    /// A usr-merged base: `bin` and `lib` are symlinks; its upper layer
    /// whites out a file and makes a folder opaque.
    fn base() -> Tree<'static> {
        let mut tree = Tree::default();
        tree.apply(vec![
            base_member("usr/bin", Node::Dir),
            base_member("usr/lib", Node::Dir),
            base_link("bin", "usr/bin"),
            base_link("lib", "usr/lib"),
            base_file("usr/bin/python3", 0o755),
            base_file("usr/bin/gone", 0o755),
            base_file("etc/passwd", 0o644),
            base_file("opt/x/old", 0o755),
            base_file("var/data/a", 0o755),
        ]);
        tree.apply(vec![
            base_member("usr/bin/.wh.gone", Node::Dir),
            base_member("var/data/.wh..wh..opq", Node::Dir),
            base_file("var/data/b", 0o755),
        ]);
        tree
    }

    fn root(source: &Path, target: &str, mode: Option<u32>) -> LayerRoot {
        LayerRoot {
            source: source.to_path_buf(),
            target: target.into(),
            owner: Owner { uid: 0, gid: 0 },
            mode,
        }
    }

    /// What the base has at each defaulted ancestor, as `scan_base_folders` reports it.
    fn folders_of(base: &Tree<'_>, plans: &[&LayerPlan]) -> BaseFolders {
        let mut folders = BaseFolders::new();
        for path in plans.iter().flat_map(|plan| plan.defaulted_ancestors()) {
            let found = match base.node(path).as_deref() {
                Some(Node::Dir) => BaseFolder::Dir {
                    mode: 0o755,
                    owner: Owner { uid: 0, gid: 0 },
                },
                Some(_) => BaseFolder::NotDir,
                None => continue,
            };
            folders.insert(path.to_vec(), found);
        }
        folders
    }

    /// Two layers over the base: an app under the symlinked `/lib` (with a
    /// symlinked folder and a hard link), a file where the base has a folder;
    /// then a folder beside the app, a file over the app's, and a folder again.
    fn two_layers(dir: &Path) -> (LayerPlan, LayerPlan) {
        let app = dir.join("app");
        fs::create_dir_all(app.join("sub")).unwrap();
        fs::write(app.join("run"), "#!/usr/bin/python3\n").unwrap();
        fs::write(app.join("sub/tool"), "#!/bin/sh\n").unwrap();
        symlink("sub", app.join("cur")).unwrap();
        fs::hard_link(app.join("run"), app.join("run2")).unwrap();
        let data = dir.join("data");
        fs::create_dir(&data).unwrap();
        symlink("/usr/bin/python3", data.join("link")).unwrap();
        let single = dir.join("single");
        fs::write(&single, "x").unwrap();
        let more = dir.join("more");
        fs::create_dir(&more).unwrap();
        fs::write(more.join("f"), "f").unwrap();

        let excludes = Excludes::new(&[]).unwrap();
        let mut known = KnownDirs::new();
        let lower = plan_layer(
            LayerRole::Files,
            &[
                root(&app, "/lib/app", None),
                root(&single, "/opt/x", None),
                root(&data, "/srv/data", None),
            ],
            &excludes,
            &mut known,
        )
        .unwrap();
        let upper = plan_layer(
            LayerRole::Workspace,
            &[
                root(&more, "/usr/lib/app/more", None),
                root(&single, "/lib/app/run", Some(0o644)),
                // A folder again where the lower layer put a file: the base's files there stay gone.
                root(&single, "/opt/x/new", None),
            ],
            &excludes,
            &mut known,
        )
        .unwrap();
        (lower, upper)
    }

    #[test]
    fn lazy_lookups_agree_with_the_eager_tree() {
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper) = two_layers(dir.path());
        let folders = folders_of(&base(), &[&lower, &upper]);
        let mut eager = base();
        eager.apply_plan(0, &lower, &folders);
        eager.apply_plan(1, &upper, &folders);
        let mut lazy = Stack::new(base(), &folders);
        lazy.push(&lower);
        lazy.push(&upper);

        let paths = [
            "/bin/python3",
            "/usr/bin/python3",
            "/usr/bin/gone",
            "/bin",
            "/lib",
            "/lib/app",
            "/usr/lib/app",
            "/lib/app/run",
            "/usr/lib/app/run2",
            "/lib/app/cur/tool",
            "/usr/lib/app/sub/tool",
            "/lib/app/sub",
            "/usr/lib/app/more/f",
            "/lib/app/more/f",
            "/opt/x",
            "/opt/x/old",
            "/opt/x/new",
            "/srv/data/link",
            "/var/data/a",
            "/var/data/b",
            "/etc/passwd",
            "/nothing",
            "/lib/nothing",
        ];
        for path in paths {
            let (want, got) = (
                eager.resolve(path.as_bytes()),
                lazy.resolve(path.as_bytes()),
            );
            assert_eq!(got, want, "{path}");
        }
        // The verdicts the comparison rests on, spelled out.
        let run = lower.find(b"lib/app/run").unwrap();
        assert!(matches!(
            lazy.resolve(b"/usr/lib/app/run2"),
            Ok(Found::File { source: Source::Added { layer: 0, entry }, .. }) if entry == run
        ));
        match lazy.resolve(b"/lib/app/run") {
            Ok(Found::File {
                path, mode, source, ..
            }) => {
                assert_eq!(path, b"usr/lib/app/run");
                assert_eq!(mode, 0o644);
                assert!(matches!(source, Source::Added { layer: 1, .. }));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            lazy.resolve(b"/srv/data/link"),
            Ok(Found::File {
                source: Source::Base { .. },
                ..
            })
        ));
        for gone in [
            "/usr/bin/gone",
            "/opt/x/old",
            "/var/data/a",
            "/lib/app/cur/nothing",
        ] {
            assert_eq!(
                lazy.resolve(gone.as_bytes()),
                Err(Lookup::Missing),
                "{gone}"
            );
        }
    }
    #[test]
    fn a_file_over_a_base_folder_hides_it_from_every_layer_above() {
        // No layer here moves an entry, so lookups take the early way out.
        let dir = tempfile::tempdir().unwrap();
        let single = dir.path().join("single");
        fs::write(&single, "x").unwrap();
        let (excludes, mut known) = (Excludes::new(&[]).unwrap(), KnownDirs::new());
        let file = [root(&single, "/opt/x", None)];
        let lower = plan_layer(LayerRole::Files, &file, &excludes, &mut known).unwrap();
        let folder = [root(&single, "/opt/x/new", None)];
        let upper = plan_layer(LayerRole::Workspace, &folder, &excludes, &mut known).unwrap();
        let folders = folders_of(&base(), &[&lower, &upper]);
        let mut eager = base();
        eager.apply_plan(0, &lower, &folders);
        eager.apply_plan(1, &upper, &folders);
        let mut lazy = Stack::new(base(), &folders);
        lazy.push(&lower);
        lazy.push(&upper);
        for path in [
            "/opt/x/old",
            "/opt/x/new",
            "/opt/x",
            "/opt",
            "/usr/bin/python3",
        ] {
            let (want, got) = (
                eager.resolve(path.as_bytes()),
                lazy.resolve(path.as_bytes()),
            );
            assert_eq!(got, want, "{path}");
        }
        assert_eq!(lazy.resolve(b"/opt/x/old"), Err(Lookup::Missing));
        assert!(matches!(
            lazy.resolve(b"/opt/x/new"),
            Ok(Found::File {
                source: Source::Added { layer: 1, .. },
                ..
            })
        ));
    }
}
