//! Walking, splitting and writing layers, checked on trees made here and read back with the tar crate.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;
use crate::gzip::CompressPool;
use crate::store::Store;

/// Writes `plan` with `compression`, mtime 1, over `base`, on two threads.
fn write_over(
    plan: &LayerPlan,
    store: &Store,
    compression: Compression,
    base: &BaseFolders,
) -> BuiltLayer {
    let pool = CompressPool::new(2);
    let settings = WriteSettings {
        compression,
        mtime: 1,
        base_folders: base,
        pool: &pool,
        progress: None,
    };
    write_layer(plan, store, &settings).unwrap()
}

const ROOT: Owner = Owner { uid: 0, gid: 0 };

fn root(source: &Path, target: &str) -> LayerRoot {
    LayerRoot {
        source: source.to_path_buf(),
        target: target.to_string(),
        owner: Owner {
            uid: 1000,
            gid: 100,
        },
        mode: None,
    }
}

fn tar_names(store: &Store, layer: &BuiltLayer) -> Vec<(String, u64, u32, tar::EntryType)> {
    let file = store.open_blob(&layer.digest).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                h.uid().unwrap(),
                h.mode().unwrap(),
                h.entry_type(),
            )
        })
        .collect()
}

#[test]
fn dockerignore_rules() {
    let ex = Excludes::new(&[
        "**/__pycache__".into(),
        "*.pyc".into(),
        "build/".into(),
        "!build/keep".into(),
    ])
    .unwrap();
    assert!(ex.is_excluded(Path::new("a/b/__pycache__")));
    assert!(ex.is_excluded(Path::new("a/__pycache__/x.py")));
    assert!(ex.is_excluded(Path::new("top.pyc")));
    assert!(
        !ex.is_excluded(Path::new("sub/deep.pyc")),
        "`*` stops at `/` as in .dockerignore"
    );
    assert!(ex.is_excluded(Path::new("build/out.o")));
    assert!(!ex.is_excluded(Path::new("build/keep")));
    assert!(!ex.is_excluded(Path::new("src/main.py")));
}

#[test]
fn layer_is_sorted_owned_and_spells_out_ancestors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("lib");
    fs::create_dir_all(src.join("b")).unwrap();
    fs::write(src.join("b/z.txt"), "z").unwrap();
    fs::write(src.join("a-c"), "ac").unwrap();
    fs::write(src.join("skip.pyc"), "x").unwrap();
    symlink("b/z.txt", src.join("link")).unwrap();
    fs::hard_link(src.join("a-c"), src.join("zz-hard")).unwrap();
    fs::set_permissions(src.join("a-c"), fs::Permissions::from_mode(0o640)).unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let ex = Excludes::new(&["*.pyc".into()]).unwrap();
    let plan = plan_layer(
        LayerRole::Library,
        &[root(&src, "/opt/app")],
        &ex,
        &mut KnownDirs::new(),
    )
    .unwrap();
    assert_eq!(plan.file_count, 2);
    let layer = write_over(&plan, &store, Compression::Gzip, &BaseFolders::new());
    let names = tar_names(&store, &layer);
    let paths: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "opt/",
            "opt/app/",
            "opt/app/a-c",
            "opt/app/b/",
            "opt/app/b/z.txt",
            "opt/app/link",
            "opt/app/zz-hard"
        ]
    );
    assert_eq!(
        (names[0].1, names[0].2),
        (0, 0o755),
        "ancestor is root-owned 0755"
    );
    assert!(names[1..].iter().all(|n| n.1 == 1000));
    assert_eq!(names[2].2, 0o640);
    assert_eq!(names[5].3, tar::EntryType::Symlink);
    assert_eq!(names[6].3, tar::EntryType::Link);
}

#[test]
fn same_tree_elsewhere_with_other_mtimes_gives_same_digests() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut digests = Vec::new();
    for name in ["one", "two/deeper"] {
        let src = dir.path().join(name);
        fs::create_dir_all(src.join("pkg")).unwrap();
        fs::write(src.join("pkg/mod.py"), "print(1)\n").unwrap();
        let long = "x".repeat(150);
        fs::write(src.join(&long), "long name").unwrap();
        let plan = plan_layer(
            LayerRole::Library,
            &[root(&src, "/opt/app")],
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
        .unwrap();
        let layer = write_over(&plan, &store, Compression::Gzip, &BaseFolders::new());
        digests.push((layer.digest, layer.diff_id));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn fifo_and_whiteout_are_refused_sockets_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("w");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join(".wh.oops"), "").unwrap();
    let err = plan_layer(
        LayerRole::Workspace,
        &[root(&src, "/w")],
        &Excludes::default(),
        &mut KnownDirs::new(),
    )
    .unwrap_err();
    assert!(matches!(err, LayerError::Whiteout { .. }), "{err}");
    fs::remove_file(src.join(".wh.oops")).unwrap();
    let fifo = src.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let err = plan_layer(
        LayerRole::Workspace,
        &[root(&src, "/w")],
        &Excludes::default(),
        &mut KnownDirs::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("pipe"), "{err}");
    fs::remove_file(&fifo).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let plan = plan_layer(
        LayerRole::Workspace,
        &[root(&src, "/w")],
        &Excludes::default(),
        &mut KnownDirs::new(),
    )
    .unwrap();
    assert_eq!(plan.warnings.len(), 1);
    assert_eq!(plan.entry_count, 1);
}

#[test]
fn a_wide_deep_tree_walks_whole_and_a_deep_error_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("lib");
    for package in 0..30 {
        for module in 0..4 {
            let folder = src.join(format!("pkg{package}/m{module}/deep/er"));
            fs::create_dir_all(&folder).unwrap();
            fs::write(folder.join("f.py"), format!("{package} {module}")).unwrap();
            std::os::unix::fs::symlink("f.py", folder.join("link")).unwrap();
        }
    }
    let plan = || {
        plan_layer(
            LayerRole::Library,
            &[root(&src, "/opt/app")],
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
    };
    let walked = plan().unwrap();
    // Per package: its folder, 4 × (3 folders, a file, a link); plus /opt/app and /opt.
    assert_eq!(walked.entry_count, 30 * (1 + 4 * 5) + 2);
    assert_eq!(walked.file_count, 30 * 4);
    let again = plan().unwrap();
    assert_eq!(
        walked.fingerprint(&BaseFolders::new(), Compression::Gzip, 1),
        again.fingerprint(&BaseFolders::new(), Compression::Gzip, 1)
    );

    fs::write(src.join("pkg17/m2/deep/.wh.gone"), "").unwrap();
    let err = plan().unwrap_err();
    assert!(err.to_string().contains("pkg17/m2/deep/.wh.gone"), "{err}");
}

#[test]
fn single_file_root_takes_mode_and_zstd_works() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("start.sh");
    fs::write(&file, "#!/bin/sh\n").unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let roots = [LayerRoot {
        source: file,
        target: "/opt/app/start.sh".into(),
        owner: ROOT,
        mode: Some(0o755),
    }];
    let mut known = KnownDirs::new();
    known.insert(
        b"opt/app".to_vec(),
        KnownDir {
            mode: 0o750,
            owner: Owner {
                uid: 1000,
                gid: 100,
            },
            defaulted: false,
        },
    );
    let plan = plan_layer(LayerRole::Files, &roots, &Excludes::default(), &mut known).unwrap();
    let layer = write_over(&plan, &store, Compression::Zstd, &BaseFolders::new());
    let blob = store.open_blob(&layer.digest).unwrap();
    let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(blob).unwrap());
    let entries: Vec<_> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                h.mode().unwrap(),
                h.uid().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            ("opt/".to_string(), 0o755, 0),
            ("opt/app/".to_string(), 0o750, 1000),
            ("opt/app/start.sh".to_string(), 0o755, 0)
        ],
        "ancestors keep what the earlier layer gave them"
    );
}

#[test]
fn base_folders_replace_defaults_and_whiteouts_hide_them() {
    use crate::image::{Descriptor, Layer, media};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let layer_of = |members: &[(&str, tar::EntryType, u32, u64)]| {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, mode, uid) in members {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            h.set_uid(*uid);
            h.set_gid(*uid);
            h.set_size(0);
            if kind.is_symlink() {
                builder.append_link(&mut h, name, "elsewhere").unwrap();
            } else {
                builder.append_data(&mut h, name, io::empty()).unwrap();
            }
        }
        let tar = builder.into_inner().unwrap();
        let digest = store.write_bytes(&tar).unwrap();
        Layer {
            descriptor: Descriptor::new(media::OCI_LAYER, digest.clone(), tar.len() as u64),
            diff_id: digest,
        }
    };
    use tar::EntryType::{Directory, Regular, Symlink};
    let lower = layer_of(&[
        ("./opt/", Directory, 0o711, 0),
        ("./home/", Directory, 0o755, 0),
        ("./home/user/", Directory, 0o750, 1000),
        ("./srv/", Directory, 0o755, 0),
        ("./data", Symlink, 0o777, 0),
    ]);
    let upper = layer_of(&[
        ("srv/.wh..wh..opq", Regular, 0o644, 0),
        ("./.wh.opt", Regular, 0o644, 0),
    ]);
    let wanted = [
        &b"opt"[..],
        b"home",
        b"home/user",
        b"data",
        b"srv",
        b"missing",
    ]
    .iter()
    .map(|p| p.to_vec())
    .collect();
    let found = scan_base_folders(&store, &[lower, upper], &wanted).unwrap();
    assert_eq!(found.get(&b"opt"[..]), None, "whited out");
    assert_eq!(
        found.get(&b"home/user"[..]),
        Some(&BaseFolder::Dir {
            mode: 0o750,
            owner: Owner {
                uid: 1000,
                gid: 1000
            }
        })
    );
    assert_eq!(found.get(&b"data"[..]), Some(&BaseFolder::NotDir));
    assert!(
        found.contains_key(&b"srv"[..]),
        "an opaque folder keeps itself"
    );

    let ws = dir.path().join("ws");
    fs::create_dir_all(&ws).unwrap();
    let roots = [root(&ws, "/home/user/work")];
    let plan = plan_layer(
        LayerRole::Workspace,
        &roots,
        &Excludes::default(),
        &mut KnownDirs::new(),
    )
    .unwrap();
    let defaulted: Vec<&[u8]> = plan.defaulted_ancestors().collect();
    assert_eq!(defaulted, [&b"home"[..], b"home/user"]);
    let layer = write_over(&plan, &store, Compression::Gzip, &found);
    let names = tar_names(&store, &layer);
    assert_eq!(names[1].0, "home/user/");
    assert_eq!(
        (names[1].1, names[1].2),
        (1000, 0o750),
        "the base's owner and mode are kept"
    );
}

#[test]
fn base_headers_with_empty_numeric_fields_read_as_zero() {
    use crate::image::{Descriptor, Layer, media};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    header.set_path("opt/").unwrap();
    // As some layer writers leave them: uid and gid all NUL bytes.
    header.as_old_mut().uid = [0; 8];
    header.as_old_mut().gid = [0; 8];
    header.set_cksum();
    builder.append(&header, io::empty()).unwrap();
    let tar = builder.into_inner().unwrap();
    let digest = store.write_bytes(&tar).unwrap();
    let layer = Layer {
        descriptor: Descriptor::new(media::OCI_LAYER, digest.clone(), tar.len() as u64),
        diff_id: digest,
    };
    let wanted = [b"opt".to_vec()].into_iter().collect();
    let found = scan_base_folders(&store, &[layer], &wanted).unwrap();
    assert_eq!(
        found.get(&b"opt"[..]),
        Some(&BaseFolder::Dir {
            mode: 0o755,
            owner: Owner { uid: 0, gid: 0 }
        })
    );
}

#[test]
fn base_layers_without_end_blocks_read_and_cut_data_is_refused() {
    use crate::image::{Descriptor, Layer, media};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o750);
    header.set_size(0);
    header.set_path("opt/").unwrap();
    header.set_cksum();
    builder.append(&header, io::empty()).unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_mode(0o644);
    header.set_size(700);
    header.set_path("opt/file").unwrap();
    header.set_cksum();
    builder.append(&header, &[b'x'; 700][..]).unwrap();
    let tar = builder.into_inner().unwrap();
    // As umoci 0.4.7 ends a layer: after the last entry's data, no padding and no end blocks.
    let data_end = 512 * 2 + 700;
    let gzip_layer = |bytes: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        let blob = gz.finish().unwrap();
        let digest = store.write_bytes(&blob).unwrap();
        Layer {
            descriptor: Descriptor::new(media::OCI_LAYER_GZIP, digest, blob.len() as u64),
            diff_id: Digest::of(bytes),
        }
    };
    let wanted = [b"opt".to_vec()].into_iter().collect();
    let found = scan_base_folders(&store, &[gzip_layer(&tar[..data_end])], &wanted).unwrap();
    assert_eq!(
        found.get(&b"opt"[..]),
        Some(&BaseFolder::Dir {
            mode: 0o750,
            owner: Owner { uid: 0, gid: 0 }
        })
    );
    let err = scan_base_folders(&store, &[gzip_layer(&tar[..data_end - 1])], &wanted).unwrap_err();
    assert!(
        matches!(err, LayerError::BaseLayer { .. }),
        "a file cut short is refused: {err}"
    );
}

mod secret_scan_in_the_layer_pass {
    use crate::layer::{
        self, BaseFolders, Compression, Excludes, KnownDirs, LayerRole, LayerRoot, WriteSettings,
    };
    use crate::scan::ScanRules;
    use crate::spec::Owner;
    use crate::store::Store;

    #[test]
    fn write_layer_reports_findings_and_writes_the_same_bytes() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let src = dir.path().join("ws");
        let key = format!("AKIA{}", "Q3ZT7WX2Q3ZT7WX2");
        let big = format!("{}\nkey = {key}\n", "x = 1\n".repeat(20_000));
        for (path, content) in [
            ("notes.txt", "nothing here\n".to_string()),
            ("deep/config.py", big),
            (".ssh/id_rsa", "not even a key".to_string()),
        ] {
            let path = src.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(path, content).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::hard_link(src.join(".ssh/id_rsa"), src.join("linked"))
            .unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path().join("store")).unwrap_or_else(|e| panic!("{e}"));
        let roots = [LayerRoot {
            source: src.clone(),
            target: "/w".into(),
            owner: Owner { uid: 0, gid: 0 },
            mode: None,
        }];
        let mut plan = layer::plan_layer(
            LayerRole::Workspace,
            &roots,
            &Excludes::default(),
            &mut KnownDirs::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let pool = crate::gzip::CompressPool::new(2);
        let settings = WriteSettings {
            compression: Compression::Gzip,
            mtime: 1,
            base_folders: &BaseFolders::new(),
            pool: &pool,
            progress: None,
        };
        let plain = layer::write_layer(&plan, &store, &settings).unwrap_or_else(|e| panic!("{e}"));
        assert!(plain.findings.is_empty(), "no scan, no findings");
        plan.secret_scan = Some(ScanRules::default());
        let scanned =
            layer::write_layer(&plan, &store, &settings).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scanned.digest, plain.digest, "the scan only looks");
        let found: Vec<String> = scanned.findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "/w/.ssh/id_rsa: ssh-key-file",
                "/w/deep/config.py:20002: aws-access-key-id",
            ],
            "the hard link `linked` sorts after its target and is not a credential name"
        );
    }
}

#[test]
fn find_looks_up_an_exact_image_path() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("lib");
    fs::create_dir_all(src.join("b")).unwrap();
    fs::write(src.join("b/z.txt"), "z").unwrap();
    // `a-c` sorts between `a` and `a/…`: a search by string order would miss.
    fs::write(src.join("a-c"), "ac").unwrap();
    fs::create_dir(src.join("a")).unwrap();
    fs::write(src.join("a/x"), "x").unwrap();
    let plan = plan_layer(
        LayerRole::Library,
        &[root(&src, "/opt/app")],
        &Excludes::new(&[]).unwrap(),
        &mut KnownDirs::new(),
    )
    .unwrap();
    let folders = BaseFolders::new();
    let all: Vec<_> = plan.planned_entries(&folders).collect();
    for entry in &all {
        assert_eq!(plan.find(entry.path), Some(entry.index), "{:?}", entry.path);
        let again = plan.planned_entry(entry.index, &folders).unwrap();
        assert_eq!(again.path, entry.path);
    }
    assert_eq!(all.len(), 7);
    for missing in [&b"opt/app/b/z"[..], b"/opt", b"opt/app/", b"opt/app/c", b""] {
        assert_eq!(plan.find(missing), None, "{missing:?}");
    }
    // A defaulted ancestor the base has as a symlink is found, but not planned.
    let mut over_link = BaseFolders::new();
    over_link.insert(b"opt".to_vec(), BaseFolder::NotDir);
    let opt = plan.find(b"opt").unwrap();
    assert!(plan.planned_entry(opt, &over_link).is_none());
    assert_eq!(plan.planned_entries(&over_link).count(), 6);
}

/// A plan holds one entry per file for the whole build: a field that makes
/// it grow costs a megabyte per 131,072 files, so it must be a choice.
#[test]
fn an_entry_stays_48_bytes() {
    assert_eq!(std::mem::size_of::<super::Entry>(), 48);
}

#[test]
fn find_names_each_entry_by_its_image_path_and_planned_entry_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("lib");
    fs::create_dir_all(src.join("a/b")).unwrap();
    fs::write(src.join("a/b/c.py"), b"x").unwrap();
    fs::write(src.join("a.b"), b"y").unwrap();
    symlink("a/b/c.py", src.join("link")).unwrap();
    let mut known = KnownDirs::new();
    let plan = plan_layer(
        LayerRole::Library,
        &[root(&src, "/opt/lib")],
        &Excludes::new(&[]).unwrap(),
        &mut known,
    )
    .unwrap();
    let base = BaseFolders::new();
    let all: Vec<_> = plan.planned_entries(&base).collect();
    assert!(all.len() >= 6, "opt, opt/lib and its four entries");
    for entry in &all {
        assert_eq!(plan.find(entry.path), Some(entry.index));
        let again = plan.planned_entry(entry.index, &base).unwrap();
        assert_eq!(again.path, entry.path);
    }
    let link = plan.find(b"opt/lib/link").unwrap();
    match plan.planned_entry(link, &base).unwrap().kind {
        PlannedKind::Symlink { target } => assert_eq!(&*target, b"a/b/c.py"),
        other => panic!("the link planned as {other:?}"),
    }
    assert_eq!(plan.find(b"opt/lib/a/b/c"), None);
    assert_eq!(
        plan.find(b"/opt/lib/a.b"),
        None,
        "image paths have no leading /"
    );
    assert!(plan.planned_entry(all.len() + 10, &base).is_none());
}

/// Sorting in halves on two threads must give exactly the order one sort gives, duplicates included.
#[test]
fn sort_in_halves_orders_as_one_sort_does() {
    let mut paths = PathArena::default();
    let mut entries = Vec::new();
    // A multiplicative sequence: paths in no order, with folders, prefixes of
    // one another ("a/b" and "a.b") and repeats, more than the threshold.
    for i in 0u64..70_000 {
        let n = i.wrapping_mul(2_654_435_761) % 50_000;
        let path = match n % 3 {
            0 => format!("opt/app/pkg{}/m{}.py", n % 97, n),
            1 => format!("opt/app/pkg{}.b/m{}", n % 97, n % 1000),
            _ => format!("opt/app/pkg{}", n % 89),
        };
        entries.push(Entry {
            origin: u32::try_from(i % 3).unwrap(),
            path: paths.push(path.as_bytes()).unwrap(),
            kind: EntryKind::Dir,
            mode: 0o755,
            multi_linked: false,
            stamp: Stamp::default().digest_at(path.as_bytes()),
            defaulted: false,
            rewrite: None,
        });
    }
    let order = |a: &Entry, b: &Entry| {
        paths
            .get(a.path)
            .cmp(paths.get(b.path))
            .then(a.origin.cmp(&b.origin))
    };
    let mut halves = entries.clone();
    super::walk::sort_in_halves(&mut halves, &order);
    entries.sort_by(order);
    let key = |e: &Entry| (paths.get(e.path).to_vec(), e.origin);
    assert!(halves.iter().map(key).eq(entries.iter().map(key)));
}

/// The bytes of `path` in the layer.
fn member_bytes(store: &Store, layer: &BuiltLayer, path: &str) -> Vec<u8> {
    let file = store.open_blob(&layer.digest).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path_bytes().as_ref() == path.as_bytes() {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("no {path} in the layer");
}

#[test]
fn a_pyc_matching_its_source_records_the_image_mtime_and_others_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let src = dir.path().join("lib");
    fs::create_dir_all(src.join("pkg/__pycache__")).unwrap();
    fs::write(src.join("pkg/fresh.py"), "x = 1\n").unwrap();
    fs::write(src.join("pkg/stale.py"), "y = 22\n").unwrap();
    fs::write(src.join("pkg/hashed.py"), "z = 3\n").unwrap();
    let mtime_of = |name: &str| {
        let stat = fs::metadata(src.join(name)).unwrap();
        std::os::unix::fs::MetadataExt::mtime(&stat) as u32
    };
    let pyc = super::bytecode::pyc_bytes;
    let fresh = pyc(0, mtime_of("pkg/fresh.py"), 6);
    let stale = pyc(0, mtime_of("pkg/stale.py") - 100, 7);
    let hashed = pyc(1, 0xdead, 0xbeef);
    fs::write(src.join("pkg/__pycache__/fresh.cpython-311.pyc"), &fresh).unwrap();
    fs::write(src.join("pkg/__pycache__/stale.cpython-311.pyc"), &stale).unwrap();
    fs::write(src.join("pkg/__pycache__/hashed.cpython-311.pyc"), &hashed).unwrap();
    let plan = plan_layer(
        LayerRole::Library,
        &[root(&src, "/opt/app")],
        &Excludes::default(),
        &mut KnownDirs::new(),
    )
    .unwrap();
    let layer = write_over(&plan, &store, Compression::Gzip, &BaseFolders::new());
    let read =
        |name: &str| member_bytes(&store, &layer, &format!("opt/app/pkg/__pycache__/{name}"));
    let mut expected = fresh.clone();
    expected[8..12].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(
        read("fresh.cpython-311.pyc"),
        expected,
        "the image's mtime, 1"
    );
    assert_eq!(
        read("stale.cpython-311.pyc"),
        stale,
        "a stale pyc stays stale"
    );
    assert_eq!(
        read("hashed.cpython-311.pyc"),
        hashed,
        "hash-based: untouched"
    );
    // The source on disk is never touched.
    assert_eq!(
        fs::read(src.join("pkg/__pycache__/fresh.cpython-311.pyc")).unwrap(),
        fresh
    );
}

/// A single root's walk, put in order a folder at a time, gives the order and the entries one sort of every path gives:
/// names that sort around a folder's (`a.b`, `a-b`, `a0`, bytes past ASCII), empty folders, and an excluded folder walked for a re-included file.
#[test]
fn a_single_roots_tree_order_is_the_order_one_sort_gives() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("lib");
    let names: [&[u8]; 9] = [
        b"a",
        b"a.b",
        b"a-b",
        b"a0",
        b"ab",
        b"b",
        b"\xc3\xa9",
        b"\xff",
        b"A",
    ];
    for first in names {
        let top = src.join(std::ffi::OsStr::from_bytes(first));
        fs::create_dir_all(&top).unwrap();
        for second in names {
            let path = top.join(std::ffi::OsStr::from_bytes(second));
            if second.len() % 2 == 0 {
                fs::create_dir_all(path.join("inner")).unwrap();
                fs::write(path.join("inner/file"), "x").unwrap();
            } else {
                fs::write(&path, "x").unwrap();
            }
        }
    }
    fs::create_dir_all(src.join("empty/also-empty")).unwrap();
    fs::create_dir_all(src.join("build/deep")).unwrap();
    fs::write(src.join("build/out.o"), "o").unwrap();
    fs::write(src.join("build/deep/keep"), "k").unwrap();
    let excludes = Excludes::new(&["build/".into(), "!build/deep/keep".into()]).unwrap();
    let plan = plan_layer(
        LayerRole::Workspace,
        &[root(&src, "/srv/app")],
        &excludes,
        &mut KnownDirs::new(),
    )
    .unwrap();
    let base = BaseFolders::new();
    let walked: Vec<Vec<u8>> = plan
        .planned_entries(&base)
        .map(|e| e.path.to_vec())
        .collect();
    let mut sorted = walked.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(walked, sorted, "in strict path order");
    // Every path a plain recursive listing finds, but the excluded ones.
    let mut expected: Vec<Vec<u8>> = vec![b"srv".to_vec(), b"srv/app".to_vec()];
    let mut pending = vec![src.clone()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            if path.is_dir() {
                pending.push(path.clone());
            }
            if rel == b"build" || rel == b"build/out.o" || rel == b"build/deep" {
                continue;
            }
            expected.push([b"srv/app/".as_slice(), &rel].concat());
        }
    }
    expected.sort();
    assert_eq!(walked, expected);
    assert!(walked.contains(&b"srv/app/build/deep/keep".to_vec()));
}
