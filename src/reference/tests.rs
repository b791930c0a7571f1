//! Reference and location parsing: what is accepted, how it is normalised, and what is refused with which hint.

use std::path::PathBuf;

use super::*;

const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn r(s: &str) -> ImageRef {
    match ImageRef::parse(s) {
        Ok(r) => r,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn err(s: &str) -> ReferenceError {
    match ImageRef::parse(s) {
        Ok(r) => panic!("{s} parsed as {r:?}"),
        Err(e) => e,
    }
}

/// input, registry, repository, tag, digest
type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

#[test]
fn normalisation_table() {
    let digest_ref = format!("ghcr.io/o/r@{D}");
    let both = format!("host:5000/a/b:t@{D}");
    let table: &[Row] = &[
        (
            "alpine",
            "docker.io",
            "library/alpine",
            Some("latest"),
            None,
        ),
        (
            "library/alpine",
            "docker.io",
            "library/alpine",
            Some("latest"),
            None,
        ),
        (
            "docker.io/alpine",
            "docker.io",
            "library/alpine",
            Some("latest"),
            None,
        ),
        (
            "index.docker.io/library/alpine:3",
            "docker.io",
            "library/alpine",
            Some("3"),
            None,
        ),
        (
            "registry-1.docker.io/x/y",
            "docker.io",
            "x/y",
            Some("latest"),
            None,
        ),
        (
            "localhost:5000/a",
            "localhost:5000",
            "a",
            Some("latest"),
            None,
        ),
        ("localhost/a", "localhost", "a", Some("latest"), None),
        (&digest_ref, "ghcr.io", "o/r", None, Some(D)),
        (&both, "host:5000", "a/b", Some("t"), Some(D)),
        ("[::1]:5000/a/b:1.0", "[::1]:5000", "a/b", Some("1.0"), None),
        ("[fe80::1]/a", "[fe80::1]", "a", Some("latest"), None),
        ("acme/app:1", "docker.io", "acme/app", Some("1"), None),
        ("a/b/c/d", "docker.io", "a/b/c/d", Some("latest"), None),
        (
            "localhost:5000",
            "docker.io",
            "library/localhost",
            Some("5000"),
            None,
        ),
        (
            "my.registry:443/team/app",
            "my.registry:443",
            "team/app",
            Some("latest"),
            None,
        ),
        (
            "x/a-b__c.d_e---f",
            "docker.io",
            "x/a-b__c.d_e---f",
            Some("latest"),
            None,
        ),
    ];
    for &(input, registry, repository, tag, digest) in table {
        let got = r(input);
        assert_eq!(got.registry, registry, "{input}");
        assert_eq!(got.repository, repository, "{input}");
        assert_eq!(got.tag.as_deref(), tag, "{input}");
        assert_eq!(got.digest.as_deref(), digest, "{input}");
    }
}

#[test]
fn accessors() {
    let a = r("alpine");
    assert_eq!(a.name(), "docker.io/library/alpine");
    assert_eq!(a.api_host(), "registry-1.docker.io");
    assert_eq!(a.to_string(), "docker.io/library/alpine:latest");
    assert_eq!(a.tag_or_latest(), "latest");
    assert_eq!(a.with_digest(D), format!("docker.io/library/alpine@{D}"));

    let g = r(&format!("ghcr.io/o/r@{D}"));
    assert_eq!(g.api_host(), "ghcr.io");
    assert_eq!(g.tag_or_latest(), "latest");
    assert_eq!(g.to_string(), format!("ghcr.io/o/r@{D}"));

    let both = r(&format!("x/y:t@{D}"));
    assert_eq!(both.to_string(), format!("docker.io/x/y:t@{D}"));
    let hp = r(&format!("host:5000/a/b@{D}"));
    assert_eq!(hp.to_string(), format!("host:5000/a/b@{D}"));
    assert_eq!(hp.api_host(), "host:5000");
}

#[test]
fn docker_hub_names() {
    for alias in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "Docker.IO",
    ] {
        assert_eq!(canonical_registry(alias), DOCKER_HUB, "{alias}");
    }
    assert_eq!(canonical_registry("ghcr.io"), "ghcr.io");
    assert_eq!(canonical_registry("localhost:5000"), "localhost:5000");
    assert_eq!(api_host(DOCKER_HUB), DOCKER_HUB_API_HOST);
    assert_eq!(api_host("localhost:5000"), "localhost:5000");
    assert_eq!(r("index.docker.io/a/b").registry, DOCKER_HUB);
}

#[test]
fn login_names_normalise() {
    assert_eq!(login_registry_name(None), "docker.io");
    assert_eq!(
        login_registry_name(Some("https://index.docker.io/v1/")),
        "docker.io"
    );
    assert_eq!(
        login_registry_name(Some("registry-1.docker.io")),
        "docker.io"
    );
    assert_eq!(login_registry_name(Some("")), "docker.io");
    assert_eq!(
        login_registry_name(Some("localhost:5000")),
        "localhost:5000"
    );
    assert_eq!(
        login_registry_name(Some("http://localhost:5000/v2/")),
        "localhost:5000"
    );
}

#[test]
fn display_reparses_to_the_same_reference() {
    for s in [
        "alpine",
        "acme/app:1",
        "localhost:5000/a",
        "[::1]:5000/a:b",
        &format!("x/y:t@{D}"),
    ] {
        let a = r(s);
        assert_eq!(r(&a.to_string()), a, "{s}");
    }
}

#[test]
fn familiar_names() {
    assert_eq!(r("alpine").familiar(), "alpine:latest");
    assert_eq!(r("docker.io/library/alpine:3").familiar(), "alpine:3");
    assert_eq!(r("acme/app:1").familiar(), "acme/app:1");
    assert_eq!(r("index.docker.io/acme/app").familiar(), "acme/app:latest");
    assert_eq!(r("ghcr.io/x/y:2").familiar(), "ghcr.io/x/y:2");
    assert_eq!(r("library/a/b").familiar(), "library/a/b:latest");
    assert_eq!(r(&format!("alpine@{D}")).familiar(), format!("alpine@{D}"));
    assert_eq!(r(&format!("alpine:3@{D}")).familiar(), "alpine:3");
    assert_eq!(r("localhost:5000/a").familiar(), "localhost:5000/a:latest");
}

#[test]
fn uppercase_is_refused_with_a_lowercase_suggestion() {
    let e = err("Acme/App:V1");
    assert!(matches!(e, ReferenceError::Uppercase { .. }), "{e:?}");
    assert!(e.to_string().contains("Acme/App:V1"));
    assert!(e.to_string().contains("lowercase"));
    assert_eq!(
        e.hint().as_deref(),
        Some("names must be lowercase: try `acme/app:V1`")
    );
    let e = err("ghcr.io/Owner/repo");
    assert_eq!(
        e.hint().as_deref(),
        Some("names must be lowercase: try `ghcr.io/owner/repo`")
    );
}

#[test]
fn bad_references() {
    assert_eq!(err(""), ReferenceError::Empty);
    assert!(matches!(err("a//b"), ReferenceError::InvalidName { .. }));
    assert!(matches!(err("/a"), ReferenceError::InvalidName { .. }));
    assert!(matches!(err("a/"), ReferenceError::InvalidName { .. }));
    assert!(matches!(err("alpine:"), ReferenceError::EmptyTag { .. }));
    assert!(matches!(
        err("localhost:5000/a:"),
        ReferenceError::EmptyTag { .. }
    ));
    assert!(matches!(
        err("alpine:.x"),
        ReferenceError::InvalidTag { .. }
    ));
    assert!(matches!(
        err("alpine:-x"),
        ReferenceError::InvalidTag { .. }
    ));
    assert!(matches!(
        err("alpine:a b"),
        ReferenceError::InvalidTag { .. }
    ));
    assert!(matches!(
        err(&format!("alpine:{}", "t".repeat(129))),
        ReferenceError::InvalidTag { .. }
    ));
    assert!(r(&format!("alpine:{}", "t".repeat(128))).tag.is_some());
    assert!(matches!(err(":tag"), ReferenceError::InvalidName { .. }));
    assert!(matches!(
        err("alpine@"),
        ReferenceError::InvalidDigest { .. }
    ));
    assert!(matches!(
        err("alpine@sha256:abc"),
        ReferenceError::InvalidDigest { .. }
    ));
    assert!(matches!(
        err(&format!("alpine@{}", D.to_uppercase())),
        ReferenceError::InvalidDigest { .. }
    ));
    assert!(matches!(
        err(&format!("alpine@md5:{}", &D[7..])),
        ReferenceError::InvalidDigest { .. }
    ));
    assert!(matches!(
        err(&format!("alpine@{D}@{D}")),
        ReferenceError::InvalidDigest { .. }
    ));
    assert!(
        r(&format!("alpine@sha512:{}", "0".repeat(128)))
            .digest
            .is_some()
    );
    assert!(matches!(err("a..b"), ReferenceError::InvalidName { .. }));
    assert!(matches!(err("a___b"), ReferenceError::InvalidName { .. }));
    assert!(matches!(err("-a"), ReferenceError::InvalidName { .. }));
    assert!(matches!(err("a-"), ReferenceError::InvalidName { .. }));
    assert!(matches!(err("a b"), ReferenceError::InvalidName { .. }));
    assert!(matches!(
        err("host:port/a"),
        ReferenceError::InvalidHost { .. }
    ));
    assert!(matches!(err("host:/a"), ReferenceError::InvalidHost { .. }));
    assert!(matches!(
        err("-host.io/a"),
        ReferenceError::InvalidHost { .. }
    ));
    assert!(matches!(
        err("[zz::1]/a"),
        ReferenceError::InvalidHost { .. }
    ));
    assert!(matches!(err("[::1/a"), ReferenceError::InvalidHost { .. }));
    // The limit counts the full, normalised name (registry included).
    let long = format!("registry.io/{}", "b".repeat(244));
    assert!(matches!(
        err(&long),
        ReferenceError::NameTooLong { len: 256, .. }
    ));
    assert!(r(&format!("registry.io/{}", "b".repeat(243))).tag.is_some());
    assert!(matches!(
        err(&format!("a/{}", "b".repeat(253))),
        ReferenceError::NameTooLong { len: 265, .. }
    ));
}

#[test]
fn every_error_names_its_input_and_has_a_hint() {
    let inputs = [
        "Up",
        "a//b",
        "alpine:",
        "alpine@x",
        "h:x/a",
        "docker:x",
        "oci:",
        "docker-archive:x:",
        "oci:x:a b",
        "dir:/x",
    ];
    for s in inputs {
        let e = match parse_location(s) {
            Ok(t) => panic!("{s} parsed as {t:?}"),
            Err(e) => e,
        };
        assert!(e.to_string().contains(s), "{s}: {e}");
        assert!(e.hint().is_some(), "{s}");
    }
}

#[test]
fn transports() {
    assert_eq!(parse_location("scratch"), Ok(Location::Scratch));
    assert_eq!(
        parse_location("alpine"),
        Ok(Location::Registry(r("alpine")))
    );
    assert_eq!(
        parse_location("docker://alpine:3"),
        Ok(Location::Registry(r("alpine:3")))
    );
    assert_eq!(
        parse_location("localhost:5000/x"),
        Ok(Location::Registry(r("localhost:5000/x")))
    );
    assert_eq!(
        parse_location("host:5000/x:tag"),
        Ok(Location::Registry(r("host:5000/x:tag")))
    );
    assert_eq!(
        parse_location("foo:bar"),
        Ok(Location::Registry(r("foo:bar")))
    );
    assert_eq!(
        parse_location("docker-archive:/tmp/x.tar:myapp:1.0"),
        Ok(Location::DockerArchive {
            path: PathBuf::from("/tmp/x.tar"),
            reference: Some(r("docker.io/library/myapp:1.0")),
        })
    );
    assert_eq!(
        parse_location("docker-archive:out.tar.gz"),
        Ok(Location::DockerArchive {
            path: PathBuf::from("out.tar.gz"),
            reference: None
        })
    );
    assert_eq!(
        parse_location("docker-archive:x.tar:localhost:5000/a:b"),
        Ok(Location::DockerArchive {
            path: PathBuf::from("x.tar"),
            reference: Some(r("localhost:5000/a:b"))
        })
    );
    assert_eq!(
        parse_location("oci:./layout:v1:extra"),
        Ok(Location::Oci {
            path: PathBuf::from("./layout"),
            tag: Some("v1:extra".to_string())
        })
    );
    assert_eq!(
        parse_location("oci:/l"),
        Ok(Location::Oci {
            path: PathBuf::from("/l"),
            tag: None
        })
    );
    assert_eq!(
        parse_location("oci-archive:/x.tar:1.0+b_2-c"),
        Ok(Location::OciArchive {
            path: PathBuf::from("/x.tar"),
            tag: Some("1.0+b_2-c".to_string())
        })
    );
}

#[test]
fn bad_transports() {
    let e = parse_location("docker:alpine").err();
    assert!(matches!(
        e,
        Some(ReferenceError::DockerWithoutSlashes { .. })
    ));
    assert_eq!(
        e.and_then(|e| e.hint()).as_deref(),
        Some("try `docker://alpine`, or just `alpine`")
    );
    assert!(matches!(
        parse_location("docker-archive:"),
        Err(ReferenceError::EmptyPath { .. })
    ));
    assert!(matches!(
        parse_location("docker-archive::x"),
        Err(ReferenceError::EmptyPath { .. })
    ));
    assert!(matches!(
        parse_location("oci:"),
        Err(ReferenceError::EmptyPath { .. })
    ));
    assert!(matches!(
        parse_location("oci-archive::t"),
        Err(ReferenceError::EmptyPath { .. })
    ));
    assert!(matches!(
        parse_location("oci:x:"),
        Err(ReferenceError::EmptySuffix { .. })
    ));
    assert!(matches!(
        parse_location("oci:x:a/b"),
        Err(ReferenceError::InvalidOciTag { .. })
    ));
    assert!(matches!(
        parse_location(&format!("docker-archive:x.tar:app@{D}")),
        Err(ReferenceError::ArchiveDigest { .. })
    ));
    assert!(matches!(
        parse_location("docker-archive:x.tar:App"),
        Err(ReferenceError::Uppercase { .. })
    ));
    assert!(matches!(
        parse_location("docker://"),
        Err(ReferenceError::Empty)
    ));
    assert!(matches!(
        parse_location("scratch:1"),
        Ok(Location::Registry(_))
    ));
    for s in [
        "dir:/tmp/x",
        "containers-storage:alpine",
        "docker-daemon:alpine:3",
    ] {
        assert!(
            matches!(
                parse_location(s),
                Err(ReferenceError::UnsupportedTransport { .. })
            ),
            "{s}"
        );
    }
    for (s, archive, suggests) in [
        ("app.tar", true, "docker-archive:app.tar"),
        ("app.tar.gz", true, "docker-archive:app.tar.gz"),
        ("myapp.TGZ", true, "oci-archive:myapp.TGZ"),
        ("./out", false, "oci:./out"),
        ("../out", false, "docker-archive:../out"),
        ("/tmp/x", false, "oci:/tmp/x"),
        ("/tmp/out.tar.gz", true, "docker-archive:/tmp/out.tar.gz"),
        ("layout.oci", false, "oci:layout.oci"),
    ] {
        let e = parse_location(s);
        assert!(
            matches!(&e, Err(ReferenceError::LooksLikePath { archive: a, .. }) if *a == archive),
            "{s}: {e:?}"
        );
        let hint = e.err().and_then(|e| e.hint()).unwrap_or_default();
        assert!(hint.contains(&format!("`{suggests}`")), "{s}: {hint}");
        assert!(!hint.contains("insecure"), "{hint}");
    }
    for s in [
        "alpine",
        "registry.example.org:5000/a/b:1",
        "docker://app.tar",
        "localhost:5000/tar:1",
        "acme/app.tarball:1",
    ] {
        assert!(
            matches!(parse_location(s), Ok(Location::Registry(_))),
            "{s}"
        );
    }
    let typo = parse_location("oci-arhive:/x.tar");
    assert!(
        matches!(&typo, Err(ReferenceError::UnsupportedTransport { prefix, .. }) if prefix == "oci-arhive"),
        "{typo:?}"
    );
}

#[test]
fn transport_display_round_trips() {
    let inputs = [
        "scratch".to_string(),
        "alpine".to_string(),
        format!("ghcr.io/o/r:1@{D}"),
        "docker-archive:/tmp/x.tar".to_string(),
        "docker-archive:/tmp/x.tar:myapp:1.0".to_string(),
        "docker-archive:rel/x.tar.gz:localhost:5000/a".to_string(),
        "oci:./layout".to_string(),
        "oci:./layout:v1:x".to_string(),
        "oci-archive:/x.tar:1.0".to_string(),
    ];
    for s in inputs {
        let t = match parse_location(&s) {
            Ok(t) => t,
            Err(e) => panic!("{s}: {e}"),
        };
        let shown = t.to_string();
        assert_eq!(parse_location(&shown), Ok(t), "{s} shown as {shown}");
    }
    assert_eq!(
        parse_location("docker-archive:/tmp/x.tar:myapp:1.0").map(|t| t.to_string()),
        Ok("docker-archive:/tmp/x.tar:docker.io/library/myapp:1.0".to_string())
    );
    assert_eq!(
        parse_location("alpine").map(|t| t.to_string()),
        Ok("docker://docker.io/library/alpine:latest".to_string())
    );
}

/// Found by `cargo fuzz run reference`: a 249-character name parsed, but
/// its normalised form `docker.io/library/…` is 267 characters, so the
/// reference stowage printed (and would push to) did not parse again.
#[test]
fn fuzz_regression_normalised_name_over_the_limit() {
    // fuzz/regressions/reference/normalised-name-too-long
    let input = concat!(
        "786666666666666666666666666666666666666666666666666666666666666666666666666666666666666666",
        "666666666666666633333333333333666666666666666666666666666666666666666666666666666666633333",
        "333333333333333333333333333333333333333333333333336666666666666666662"
    );
    assert_eq!(input.len(), 249);
    assert!(matches!(
        ImageRef::parse(input),
        Err(ReferenceError::NameTooLong { len: 267, .. })
    ));
    // Just under the limit once normalised is still fine, and prints back to itself.
    let fits = "a".repeat(NAME_MAX - "docker.io/library/".len());
    let parsed = ImageRef::parse(&fits).unwrap();
    assert_eq!(ImageRef::parse(&parsed.to_string()).unwrap(), parsed);
    assert!(ImageRef::parse(&format!("{fits}a")).is_err());
}
