//! Licenses found, not only declared: real packages whose metadata names a
//! license family ("BSD", a trove classifier) get the license their files
//! hold, and the SBOM says which was declared and which concluded, as read
//! by spdx-tools and cyclonedx-python-lib; Debian's R packages declare R's
//! own syntax, read into the SPDX expression it means.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::rig::libraries::{copy_tree, jupyterlab_venv_shared, pytools_python, require_pytools};
use crate::rig::*;

/// The JupyterLab venv's packages this test is about, with what their
/// metadata declares and what their license files hold.
const CONCLUDED: [(&str, &str, &str); 3] = [
    // The "BSD License" classifier only; licenses/LICENSE.txt is BSD-3-Clause.
    ("Jinja2", "LicenseRef-BSD-License", "BSD-3-Clause"),
    // `License: BSD`; licenses/LICENSE is BSD-2-Clause.
    ("nest-asyncio2", "LicenseRef-BSD", "BSD-2-Clause"),
    // The "Apache Software License" classifier only.
    ("arrow", "LicenseRef-Apache-Software-License", "Apache-2.0"),
];

/// A site-packages of copies of the shared venv's dist-infos for `names`
/// (their metadata and license files, as pip installed them from PyPI).
fn site_packages_of(sb: &Sandbox, names: &[&str]) -> PathBuf {
    let venv_site = fs::read_dir(jupyterlab_venv_shared().join("lib"))
        .unwrap()
        .map(|entry| entry.unwrap().path().join("site-packages"))
        .find(|path| path.is_dir())
        .expect("the JupyterLab venv has a site-packages");
    let library = sb.join("library");
    let site = library.join("lib/python3/site-packages");
    fs::create_dir_all(&site).unwrap();
    for entry in fs::read_dir(&venv_site).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let wanted = names
            .iter()
            .any(|name| file.starts_with(&format!("{name}-")) && file.ends_with(".dist-info"));
        if wanted {
            copy_tree(&path, &site.join(&file));
        }
    }
    library
}

fn build_with_sbom(sb: &Sandbox, library: &Path, sbom: &Path, format: &str) {
    let spec = sb.join("stowage.toml");
    fs::write(
        &spec,
        format!(
            "base = \"scratch\"\n[app]\nlibrary = {{ source = \"{}\", target = \"/opt/app\" }}\ncommand = [\"/opt/app/run\"]\n",
            library.display()
        ),
    )
    .unwrap();
    let out = sb
        .stowage()
        .args(["build", "--no-start-check", "-f"])
        .arg(&spec)
        .arg("-o")
        .arg(format!("oci:{}:{format}", sb.join("layout").display()))
        .args(["--sbom", sbom.to_str().unwrap(), "--sbom-format", format])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out.stderr));
}

fn python(args: &[&str]) -> Output {
    let out = Command::new(pytools_python()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        show(&out.stdout),
        show(&out.stderr)
    );
    out
}

/// `name declared concluded` per package, as spdx-tools reads the document.
const READ_SPDX: &str = r#"
import sys
from spdx_tools.spdx.parser.parse_anything import parse_file
for p in parse_file(sys.argv[1]).packages:
    print(p.name, p.license_declared, p.license_concluded)
"#;

/// `name acknowledgement license…` per license, as cyclonedx-python-lib reads the document.
const READ_CYCLONEDX: &str = r#"
import json, sys
from cyclonedx.model.bom import Bom
bom = Bom.from_json(json.load(open(sys.argv[1])))
for c in bom.components:
    for l in c.licenses:
        text = getattr(l, "id", None) or getattr(l, "name", None) or getattr(l, "value", None)
        print(c.name, l.acknowledgement.value, text)
"#;

#[test]
fn vague_python_licenses_are_concluded_and_the_sbom_says_which_is_which() {
    if !require_pytools() {
        return;
    }
    let sb = Sandbox::new();
    let library = site_packages_of(&sb, &["jinja2", "nest_asyncio2", "arrow", "requests"]);
    let spdx = sb.join("image.spdx.json");
    let cdx = sb.join("image.cdx.json");
    build_with_sbom(&sb, &library, &spdx, "spdx");
    build_with_sbom(&sb, &library, &cdx, "cyclonedx");
    for (file, format) in [(&spdx, "spdx"), (&cdx, "cyclonedx")] {
        python(&["scripts/validate-sbom.py", format, file.to_str().unwrap()]);
    }
    let spdx_read = show(&python(&["-c", READ_SPDX, spdx.to_str().unwrap()]).stdout);
    let spdx_lines: Vec<&str> = spdx_read.lines().collect();
    for (name, declared, concluded) in CONCLUDED {
        let line = format!("{name} {declared} {concluded}");
        assert!(
            spdx_lines.contains(&line.as_str()),
            "{line} in:\n{spdx_read}"
        );
    }
    // Declared as an SPDX expression: nothing to conclude.
    assert!(
        spdx_lines.contains(&"requests Apache-2.0 NOASSERTION"),
        "{spdx_read}"
    );
    let cdx_read = show(&python(&["-c", READ_CYCLONEDX, cdx.to_str().unwrap()]).stdout);
    for expected in [
        "Jinja2 declared BSD License",
        "Jinja2 concluded BSD-3-Clause",
        "nest-asyncio2 declared BSD",
        "nest-asyncio2 concluded BSD-2-Clause",
        "arrow concluded Apache-2.0",
        "requests declared Apache-2.0",
    ] {
        assert!(
            cdx_read.lines().any(|line| line == expected),
            "{expected} in:\n{cdx_read}"
        );
    }
    assert!(!cdx_read.contains("requests concluded"), "{cdx_read}");
}

/// Debian's r-cran-mass (scripts/test-env.sh installs it): MASS declares `GPL-2 | GPL-3`.
const DEBIAN_MASS: &str = "/usr/lib/R/library/MASS";

#[test]
fn a_debian_r_package_declares_the_spdx_expression_r_means() {
    let mass = Path::new(DEBIAN_MASS);
    let present = mass.join("DESCRIPTION").is_file()
        || skip_or_fail(&format!(
            "{DEBIAN_MASS} missing (apt-get install r-cran-mass)"
        ));
    if !present || !require_pytools() {
        return;
    }
    let description = fs::read_to_string(mass.join("DESCRIPTION")).unwrap();
    assert!(
        description.contains("\nLicense: GPL-2 | GPL-3\n"),
        "Debian's MASS changed its License: {description}"
    );
    let sb = Sandbox::new();
    let library = sb.join("library");
    fs::create_dir_all(library.join("R/library")).unwrap();
    copy_tree(mass, &library.join("R/library/MASS"));
    let spdx = sb.join("image.spdx.json");
    build_with_sbom(&sb, &library, &spdx, "spdx");
    let read = show(&python(&["-c", READ_SPDX, spdx.to_str().unwrap()]).stdout);
    assert!(
        read.lines()
            .any(|line| line == "MASS GPL-2.0-only OR GPL-3.0-only NOASSERTION"),
        "{read}"
    );
}
