//! Readers and writers of the local transports, checked against tars built here and by hand.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;

use serde_json::{Value, json};

use super::docker_save::{read_docker_archive, write_docker_archive};
use super::read::{read_oci_archive, read_oci_layout};
use super::write::{member_header, oci_layout_file, write_oci_archive, write_oci_layout};
use super::*;
use crate::image::{Artifact, Descriptor, Format, Image, Layer, canonical_json, media};
use crate::reference::ImageRef;
use crate::store::Store;

enum Member<'a> {
    File(&'a str, Vec<u8>),
    Symlink(&'a str, &'a str),
}

fn write_tar(path: &Path, members: &[Member<'_>]) {
    let mut builder = tar::Builder::new(File::create(path).unwrap());
    for member in members {
        match member {
            Member::File(name, bytes) => {
                let mut header = member_header(bytes.len() as u64, 0);
                builder.append_data(&mut header, name, &bytes[..]).unwrap();
            }
            Member::Symlink(name, target) => {
                let mut header = tar::Header::new_ustar();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, name, target).unwrap();
            }
        }
    }
    builder.finish().unwrap();
}

/// A one-file layer tar and its bytes.
fn layer_tar(content: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = member_header(content.len() as u64, 0);
    builder
        .append_data(&mut header, "hello.txt", content.as_bytes())
        .unwrap();
    builder.into_inner().unwrap()
}

fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    canonical_json(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Healthcheck": {"Test": ["CMD", "true"]}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
}

fn blob_name(bytes: &[u8]) -> String {
    format!("blobs/sha256/{}", Digest::of(bytes).hex())
}

fn setup() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

#[test]
fn docker25_archive_is_read_through_its_index_with_digests_kept() {
    let (dir, store) = setup();
    let layer = layer_tar("hi");
    let config = config_for(&[Digest::of(&layer)]);
    let manifest = canonical_json(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": Digest::of(&config), "size": config.len()},
        "layers": [{"mediaType": media::OCI_LAYER, "digest": Digest::of(&layer), "size": layer.len()}],
    }));
    let index = canonical_json(&json!({"schemaVersion": 2, "manifests": [{
        "mediaType": media::OCI_MANIFEST, "digest": Digest::of(&manifest), "size": manifest.len(),
        "annotations": {CONTAINERD_NAME: "docker.io/library/app:1", REF_NAME: "1"},
    }]}));
    let classic = canonical_json(&json!([{
        "Config": blob_name(&config), "RepoTags": ["app:1"], "Layers": [blob_name(&layer)],
    }]));
    let path = dir.path().join("d25.tar");
    write_tar(
        &path,
        &[
            Member::File(&blob_name(&layer), layer.clone()),
            Member::File(&blob_name(&config), config.clone()),
            Member::File(&blob_name(&manifest), manifest.clone()),
            Member::File("index.json", index),
            Member::File("manifest.json", classic),
            Member::File("oci-layout", oci_layout_file()),
        ],
    );
    let reference = ImageRef::parse("app:1").unwrap();
    for wanted in [None, Some(&reference)] {
        let Artifact::Image(image) = read_docker_archive(&path, wanted, &store).unwrap() else {
            panic!("expected an image");
        };
        assert_eq!(
            image.digest(),
            &Digest::of(&manifest),
            "the stored manifest is used as is"
        );
        assert_eq!(image.layers()[0].descriptor.media_type, media::OCI_LAYER);
        assert!(store.contains(&Digest::of(&layer)));
    }
    let other = ImageRef::parse("other:2").unwrap();
    let err = read_docker_archive(&path, Some(&other), &store).unwrap_err();
    assert!(err.to_string().contains("no image tagged"), "{err}");
}

#[test]
fn classic_archive_with_shared_layer_symlink() {
    let (dir, store) = setup();
    let layer = layer_tar("shared");
    let diff_id = Digest::of(&layer);
    let config = config_for(&[diff_id.clone(), diff_id.clone()]);
    let path = dir.path().join("classic.tar.gz");
    let plain = dir.path().join("classic.tar");
    write_tar(
        &plain,
        &[
            Member::File("aaa/layer.tar", layer.clone()),
            Member::Symlink("bbb/layer.tar", "../aaa/layer.tar"),
            Member::File("cfg.json", config.clone()),
            Member::File(
                "manifest.json",
                canonical_json(
                    &json!([{"Config": "cfg.json", "RepoTags": null, "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]),
                ),
            ),
        ],
    );
    let mut gz =
        flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
    io::copy(&mut File::open(&plain).unwrap(), &mut gz).unwrap();
    gz.finish().unwrap();
    let Artifact::Image(image) = read_docker_archive(&path, None, &store).unwrap() else {
        panic!("expected an image");
    };
    assert_eq!(image.media_type(), media::DOCKER_MANIFEST);
    assert_eq!(
        image.raw_config(),
        &config[..],
        "config bytes are kept exactly"
    );
    assert_eq!(image.layers().len(), 2);
    assert!(
        image
            .layers()
            .iter()
            .all(|l| l.diff_id == diff_id && l.descriptor.media_type == media::DOCKER_LAYER_GZIP)
    );
    assert_ne!(
        image.layers()[0].descriptor.digest,
        diff_id,
        "classic layers are gzipped on read"
    );
}

#[test]
fn classic_archive_whose_layer_does_not_match_its_diff_id_is_refused() {
    let (dir, store) = setup();
    let layer = layer_tar("real");
    let config = config_for(&[Digest::of(&layer_tar("claimed"))]);
    let path = dir.path().join("lie.tar");
    write_tar(
        &path,
        &[
            Member::File("l/layer.tar", layer),
            Member::File("c.json", config),
            Member::File(
                "manifest.json",
                canonical_json(&json!([{"Config": "c.json", "Layers": ["l/layer.tar"]}])),
            ),
        ],
    );
    let err = read_docker_archive(&path, None, &store).unwrap_err();
    assert!(err.to_string().contains("diff-id"), "{err}");
}

#[test]
fn hostile_member_names_are_refused() {
    let (dir, store) = setup();
    for name in ["../escape", "/etc/passwd", "a/../../b"] {
        let path = dir.path().join("hostile.tar");
        let mut raw = tar::Builder::new(Vec::new());
        let mut header = member_header(1, 0);
        // tar's own path setter refuses `..`, so write the name bytes directly.
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        header.set_cksum();
        raw.append(&header, &b"x"[..]).unwrap();
        fs::write(&path, raw.into_inner().unwrap()).unwrap();
        let err = read_docker_archive(&path, None, &store).unwrap_err();
        assert!(err.to_string().contains("refusing"), "{name}: {err}");
    }
}

#[test]
fn truncated_archive_and_lying_blob_names_are_errors() {
    let (dir, store) = setup();
    let layer = layer_tar(&"x".repeat(5000));
    let path = dir.path().join("t.tar");
    write_tar(&path, &[Member::File(&blob_name(&layer), layer.clone())]);
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..full.len() / 2]).unwrap();
    let err = read_docker_archive(&path, None, &store).unwrap_err();
    assert!(
        err.to_string().contains("truncated") || err.to_string().contains("damaged"),
        "{err}"
    );

    let liar = format!("blobs/sha256/{}", Digest::of(b"something else").hex());
    write_tar(&path, &[Member::File(&liar, layer)]);
    let err = read_docker_archive(&path, None, &store).unwrap_err();
    assert!(matches!(
        err,
        ArchiveError::Store {
            source: StoreError::DigestMismatch { .. },
            ..
        }
    ));
    assert!(!store.contains(&Digest::of(b"something else")));
}

fn sample_image(store: &Store, content: &str) -> Image {
    let layer = layer_tar(content);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).unwrap();
    let gz = gz.finish().unwrap();
    let digest = store.write_bytes(&gz).unwrap();
    let layers = vec![Layer {
        descriptor: Descriptor::new(media::OCI_LAYER_GZIP, digest, gz.len() as u64),
        diff_id: Digest::of(&layer),
    }];
    Image::assemble(
        Format::Oci,
        config_for(&[Digest::of(&layer)]),
        layers,
        BTreeMap::new(),
    )
    .unwrap()
}

#[test]
fn archives_written_read_back_with_the_same_digest() {
    let (dir, store) = setup();
    let image = sample_image(&store, "round trip");
    let reference = ImageRef::parse("acme/app:7").unwrap();
    for name in ["a.tar", "a.tar.gz"] {
        let path = dir.path().join(name);
        write_docker_archive(&path, Some(&reference), &image, None, &store, 1).unwrap();
        let fresh = Store::open(dir.path().join(format!("fresh-{name}"))).unwrap();
        let back = read_docker_archive(&path, Some(&reference), &fresh).unwrap();
        assert_eq!(back.digest(), image.digest(), "{name}");
    }
    let oci = dir.path().join("o.tar");
    write_oci_archive(&oci, "v1", &Artifact::Image(image.clone()), &store, 1).unwrap();
    assert_eq!(
        read_oci_archive(&oci, Some("v1"), &store, true)
            .unwrap()
            .digest(),
        image.digest()
    );
    // Nothing but the outputs is left in the folder: no stray temp files.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("fresh") && n != "store")
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn a_corrupt_store_blob_never_reaches_an_output() {
    let (dir, store) = setup();
    let image = sample_image(&store, "to be damaged");
    let layer = image.layers()[0].descriptor.clone();
    let path = store.blob_path(&layer.digest);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let out = dir.path().join("out.tar");
    let err = write_docker_archive(&out, None, &image, None, &store, 1).unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(err.hint().unwrap().contains("again"), "{err}");
    assert!(!out.exists() && !store.contains(&layer.digest));
    let layout = dir.path().join("layout");
    let err = write_oci_layout(&layout, "t", &Artifact::Image(image.clone()), &store).unwrap_err();
    assert!(
        matches!(err, ArchiveError::Write { .. } | ArchiveError::Store { .. }),
        "{err}"
    );
    assert!(!layout.exists(), "a new layout appears whole or not at all");
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "only the store is left: {names:?}");
}

#[test]
fn concurrent_writers_to_one_layout_keep_every_tag() {
    let (dir, store) = setup();
    let layout = dir.path().join("shared");
    let images: Vec<Image> = (0..6)
        .map(|i| sample_image(&store, &format!("image {i}")))
        .collect();
    std::thread::scope(|scope| {
        for (i, image) in images.iter().enumerate() {
            let (layout, store) = (&layout, &store);
            scope.spawn(move || {
                write_oci_layout(
                    layout,
                    &format!("t{i}"),
                    &Artifact::Image(image.clone()),
                    store,
                )
                .unwrap()
            });
        }
    });
    for (i, image) in images.iter().enumerate() {
        let read = read_oci_layout(&layout, Some(&format!("t{i}")), &store, true).unwrap();
        assert_eq!(read.digest(), image.digest());
    }
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temp folder is left: {names:?}");
}

#[test]
fn layout_keeps_other_tags_and_replaces_the_same_tag() {
    let (dir, store) = setup();
    let layout = dir.path().join("layout");
    let first = sample_image(&store, "one");
    let second = sample_image(&store, "two");
    write_oci_layout(&layout, "a", &Artifact::Image(first.clone()), &store).unwrap();
    write_oci_layout(&layout, "b", &Artifact::Image(second.clone()), &store).unwrap();
    write_oci_layout(&layout, "a", &Artifact::Image(second.clone()), &store).unwrap();
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    for tag in ["a", "b"] {
        let read = read_oci_layout(&layout, Some(tag), &store, true).unwrap();
        assert_eq!(read.digest(), second.digest());
    }
    let err = read_oci_layout(&layout, None, &store, true).unwrap_err();
    assert!(
        err.to_string().contains("tags here: a, b") || err.to_string().contains("tags here: b, a"),
        "{err}"
    );
    let err = read_oci_layout(&layout, Some("zzz"), &store, true).unwrap_err();
    assert!(err.to_string().contains("no image tagged `zzz`"), "{err}");
}

/// A rebuild that changes nothing leaves index.json as it was (not rewritten
/// through a temp file, so its inode stays); a changed tag rewrites it.
#[test]
fn layout_index_is_rewritten_only_when_it_changes() {
    use std::os::unix::fs::MetadataExt;
    let (dir, store) = setup();
    let layout = dir.path().join("layout");
    let first = Artifact::Image(sample_image(&store, "one"));
    let inode = || fs::metadata(layout.join("index.json")).unwrap().ino();
    write_oci_layout(&layout, "a", &first, &store).unwrap();
    let before = (inode(), fs::read(layout.join("index.json")).unwrap());
    write_oci_layout(&layout, "a", &first, &store).unwrap();
    assert_eq!(
        before,
        (inode(), fs::read(layout.join("index.json")).unwrap())
    );
    let second = Artifact::Image(sample_image(&store, "two"));
    write_oci_layout(&layout, "a", &second, &store).unwrap();
    assert_ne!(before.0, inode());
    let read = read_oci_layout(&layout, Some("a"), &store, true).unwrap();
    assert_eq!(read.digest(), second.digest());
}

#[test]
fn archive_ending_without_padding_or_end_blocks_reads() {
    let (dir, store) = setup();
    let layer = layer_tar("lenient");
    let config = config_for(&[Digest::of(&layer)]);
    let manifest = canonical_json(
        &json!([{"Config": "cfg.json", "RepoTags": ["app:1"], "Layers": ["aaa/layer.tar"]}]),
    );
    let path = dir.path().join("short.tar");
    write_tar(
        &path,
        &[
            Member::File("aaa/layer.tar", layer),
            Member::File("cfg.json", config.clone()),
            Member::File("manifest.json", manifest.clone()),
        ],
    );
    let full = fs::read(&path).unwrap();
    let padding = (512 - manifest.len() % 512) % 512;
    let data_end = full.len() - 1024 - padding;
    fs::write(&path, &full[..data_end]).unwrap();
    let Artifact::Image(image) = read_docker_archive(&path, None, &store).unwrap() else {
        panic!("expected an image");
    };
    assert_eq!(image.raw_config(), &config[..]);

    fs::write(&path, &full[..data_end - 1]).unwrap();
    let err = read_docker_archive(&path, None, &store).unwrap_err();
    assert!(err.to_string().contains("manifest.json"), "{err}");
}
