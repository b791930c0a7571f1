#!/usr/bin/env python3
"""Tests of scripts/check-architecture.py.

Each test writes a small crate `src/` into a temporary directory, runs the
script on it as CI does (a subprocess) and checks the exit status and what it
prints. Run: python3 scripts/test_check_architecture.py
"""

import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "check-architecture.py"
REPO_SRC = Path(__file__).resolve().parent.parent / "src"

# A small crate that keeps every rule: leaves use only leaves, cli only
# calls the library, no cycles.
CLEAN = {
    "lib.rs": "pub mod cli;\npub mod digest;\npub mod gzip;\npub mod store;\n",
    "main.rs": "fn main() { stowage::cli::run(); }\n",
    "digest.rs": "pub struct Digest;\n",
    "gzip.rs": "use crate::digest::Digest;\npub fn pack(_: Digest) {}\n",
    "store.rs": "use crate::{digest::Digest, gzip};\npub fn put(d: Digest) { gzip::pack(d) }\n",
    "cli.rs": textwrap.dedent(
        """\
        use crate::store;
        pub fn run() {
            store::put(crate::digest::Digest);
        }
        """
    ),
}


class ArchitectureTest(unittest.TestCase):
    def run_check(self, files, *args):
        """Run the script on a src/ made of files ({relative path: text})."""
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "src"
            for rel, text in files.items():
                path = src / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            return self.run_script(*args, str(src))

    def run_script(self, *args):
        return subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def assert_passes(self, result):
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("no cycles", result.stdout)

    def assert_fails(self, result, *expected):
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        for text in expected:
            self.assertIn(text, result.stderr)

    def test_a_clean_tree_passes(self):
        result = self.run_check(CLEAN)
        self.assert_passes(result)
        self.assertIn(
            "4 modules, 5 edges, no cycles (modules or files in any folder), cli clean",
            result.stdout,
        )

    def test_graph_lists_each_module_and_what_it_uses(self):
        result = self.run_check(CLEAN, "--graph")
        self.assert_passes(result)
        self.assertEqual(
            result.stdout.splitlines()[:4],
            ["cli -> digest, store", "digest ->", "gzip -> digest", "store -> digest, gzip"],
        )

    def test_a_deliberate_cycle_fails_and_names_both_modules(self):
        files = {
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "use crate::b::g;\npub fn f() {}\npub fn h() { g() }\n",
            "b.rs": "pub fn g() {\n    crate::a::f();\n}\n",
        }
        result = self.run_check(files)
        self.assert_fails(
            result,
            "a -> b -> a",
            "a -> b: src/a.rs:1",
            "b -> a: src/b.rs:2",
        )

    def test_every_cycle_of_a_tangle_is_reported(self):
        files = {
            "a.rs": "use crate::b;\n",
            "b.rs": "use crate::c;\nuse crate::a;\n",
            "c.rs": "use crate::a;\n",
            "x.rs": "use crate::y;\n",
            "y.rs": "use crate::x;\n",
        }
        result = self.run_check(files)
        self.assert_fails(
            result,
            "cycle between modules a, b, c:",
            "a -> b -> a",
            "b -> c -> a -> b",
            "cycle between modules x, y:",
            "x -> y -> x",
        )

    def test_a_cycle_only_through_grouped_nested_use_is_found(self):
        files = {
            "x.rs": "pub mod y {}\n",
            "z.rs": "pub struct Z;\n",
            "w.rs": "use crate::{x::{y}, z};\n",
            "x/inner.rs": "pub use crate::w as _w;\n",
        }
        result = self.run_check(files)
        self.assert_fails(result, "w -> x -> w", "w -> x: src/w.rs:1", "x -> w: src/x/inner.rs:1")

    def test_multi_line_and_visibility_forms_of_use_are_edges(self):
        files = {
            "a.rs": "pub(crate) use crate::{\n    b::{self, B},\n};\n",
            "b.rs": "pub use crate::c::{\n    C,\n};\n",
            "c.rs": "pub(crate) use crate::a::{self as alias};\n",
        }
        result = self.run_check(files)
        self.assert_fails(result, "a -> b: src/a.rs:2", "b -> c: src/b.rs:1", "c -> a: src/c.rs:1")

    def test_super_that_climbs_out_of_a_module_is_an_edge(self):
        files = {
            "a.rs": "use crate::b::B;\n",
            "b/mod.rs": "pub struct B;\nmod inner;\n",
            "b/inner.rs": "use super::super::a;\nuse super::B;\n",
        }
        self.assert_fails(self.run_check(files), "b -> a: src/b/inner.rs:1")

    def test_root_reexports_count_as_the_module_they_come_from(self):
        files = {
            "lib.rs": "pub mod a;\npub mod error;\npub use error::Error;\n",
            "error.rs": "use crate::a::A;\npub struct Error(A);\n",
            "a.rs": "pub struct A;\npub fn f() -> Result<(), crate::Error> { Ok(()) }\n",
        }
        self.assert_fails(self.run_check(files), "a -> error -> a")

    def test_test_modules_count(self):
        files = {
            "a.rs": "use crate::b;\n",
            "b.rs": "#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::a;\n}\n",
        }
        self.assert_fails(self.run_check(files), "a -> b -> a", "b -> a: src/b.rs:4")

    def test_crate_paths_in_comments_and_strings_do_not_count(self):
        b = textwrap.dedent(
            r'''
            //! Module docs that mention crate::a::f.
            /// Calls crate::a::f() in a doc comment.
            // use crate::a;
            /* use crate::a; /* nested */ crate::a::f(); */
            /** crate::a::f() */
            pub fn g() -> (&'static str, &'static str, char, char, u8) {
                let s = "use crate::a; crate::a::f()";
                let r = r#"crate::a::f() "quoted" "#;
                let e = "escaped \" crate::a::f() \\";
                let rb = br##"crate::a::f() "# "##;
                let q = '"';
                let t = '\'';
                let b = b'"';
                let _ = (rb, b);
                (s, r, q, t, e.len() as u8)
            }
            #[doc = "crate::a::f()"]
            pub fn h<'a>(x: &'a str) -> &'a str { x }
            '''
        )
        files = {"a.rs": "use crate::b::g;\npub fn f() { g(); }\n", "b.rs": b}
        result = self.run_check(files, "--graph")
        self.assert_passes(result)
        self.assertIn("b ->\n", result.stdout)

    def test_code_after_a_char_literal_quote_still_counts(self):
        # '"' must not open a string that hides the line after it.
        files = {
            "a.rs": "use crate::b;\n",
            "b.rs": "pub fn g() -> char { '\"' }\npub fn h() { crate::a::f() }\n",
        }
        self.assert_fails(self.run_check(files), "b -> a: src/b.rs:2")

    def test_cli_must_not_use_tar_reqwest_rusqlite_or_build_json(self):
        cases = {
            "use tar::Header;\n": "uses crate tar",
            "fn f() { let _ = tar::Header::new_gnu(); }\n": "uses crate tar",
            "fn f() { let _ = ::tar::Header::new_gnu(); }\n": "uses crate tar",
            "extern crate tar;\n": "uses crate tar",
            "use reqwest::blocking::Client;\n": "uses crate reqwest",
            "use {std::io, rusqlite::Connection};\n": "uses crate rusqlite",
            "use serde_json::{self, Value};\n": "uses crate serde_json",
            "fn f() -> String { serde_json::to_string(&1).unwrap() }\n": "uses crate serde_json",
            "fn f() { let _ = json!({\"a\": 1}); }\n": "uses macro json!",
        }
        for code, message in cases.items():
            with self.subTest(code=code):
                files = {"cli.rs": "\n" + code, "archive.rs": "pub fn f() {}\n"}
                self.assert_fails(self.run_check(files), "src/cli.rs:2: " + message)

    def test_cli_rules_look_at_cli_folders_and_only_at_cli(self):
        files = {
            "cli/mod.rs": "mod output;\n",
            "cli/output.rs": "fn f() -> String {\n    serde_json::json!([]).to_string()\n}\n",
            "archive.rs": "use tar::Header;\npub fn f() { let _ = serde_json::json!({}); }\n",
        }
        result = self.run_check(files)
        self.assert_fails(result, "src/cli/output.rs:2: uses crate serde_json")
        self.assertNotIn("archive.rs", result.stderr)

    def test_cli_may_use_a_module_of_its_own_named_like_a_crate_path(self):
        files = {
            "cli.rs": "fn f() { crate::archive::tar::write(); let json = 1; let _ = json != 2; }\n",
            "archive.rs": "pub mod tar { pub fn write() {} }\n",
        }
        self.assert_passes(self.run_check(files))

    def test_a_leaf_importing_a_non_leaf_fails(self):
        files = {
            "digest.rs": "use crate::gzip;\nuse crate::store::Store;\n",
            "gzip.rs": "pub fn pack() {}\n",
            "store.rs": "pub struct Store;\n",
        }
        result = self.run_check(files)
        self.assert_fails(result, "src/digest.rs:2: leaf module digest uses store, which is not a leaf")
        self.assertNotIn("uses gzip", result.stderr)

    def test_missing_leaves_are_skipped(self):
        files = {"store.rs": "pub struct Store;\n", "copy.rs": "use crate::store::Store;\n"}
        self.assert_passes(self.run_check(files))

    def test_two_sibling_files_that_use_each_other_are_a_cycle(self):
        files = {
            "lib.rs": "pub mod layer;\n",
            "layer/mod.rs": "mod cached;\nmod content;\n",
            "layer/cached.rs": "use super::content::hint;\npub fn take() {}\n",
            "layer/content.rs": "pub fn hint() {}\nfn f() {\n    super::cached::take();\n}\n",
        }
        self.assert_fails(
            self.run_check(files),
            "cycle between files of layer/: cached, content",
            "cached -> content -> cached",
            "cached -> content: src/layer/cached.rs:1",
            "content -> cached: src/layer/content.rs:3",
            "0 cycle(s) between modules, 1 between the files of a folder",
        )

    def test_a_sibling_cycle_through_a_reexport_in_mod_rs_is_found(self):
        # content.rs names `super::take`, which mod.rs re-exports from cached.rs.
        files = {
            "layer/mod.rs": "mod cached;\nmod content;\npub use cached::take;\n",
            "layer/cached.rs": "use super::content::hint;\npub fn take() {}\n",
            "layer/content.rs": "use super::{take};\npub fn hint() {}\n",
        }
        self.assert_fails(
            self.run_check(files),
            "cycle between files of layer/: cached, content",
            "content -> cached: src/layer/content.rs:1",
        )

    def test_a_chain_of_reexports_is_followed_to_where_the_name_lives(self):
        # `crate::layer::write_tar` is re-exported by layer/mod.rs from write/,
        # whose mod.rs re-exports it from write/tar.rs: header.rs uses tar.rs.
        files = {
            "layer/mod.rs": "mod write;\npub use self::write::write_tar;\n",
            "layer/write/mod.rs": "mod header;\nmod tar;\npub use tar::write_tar;\n",
            "layer/write/tar.rs": "use super::header::Header;\npub fn write_tar() {}\n",
            "layer/write/header.rs": "pub struct Header;\nfn f() { crate::layer::write_tar() }\n",
        }
        self.assert_fails(
            self.run_check(files),
            "cycle between files of layer/write/: header, tar",
            "header -> tar: src/layer/write/header.rs:2",
            "tar -> header: src/layer/write/tar.rs:1",
        )

    def test_mod_rs_and_its_children_using_each_other_is_not_a_cycle(self):
        files = {
            "layer/mod.rs": textwrap.dedent(
                """\
                mod cached;
                mod write;
                pub use cached::write_layers;
                pub use write::{write_layer, Settings};
                pub struct Plan;
                fn f(s: Settings) { write_layers(s); write_layer(); cached::helper() }
                """
            ),
            "layer/write.rs": "use super::Plan;\npub struct Settings;\npub fn write_layer() {}\n",
            "layer/cached.rs": textwrap.dedent(
                """\
                use super::{Plan, Settings, write_layer};
                pub fn write_layers(_: Settings) { write_layer() }
                pub fn helper() {}
                """
            ),
        }
        result = self.run_check(files, "--graph")
        self.assert_passes(result)
        self.assertIn("layer/cached -> write\n", result.stdout)
        self.assertIn("layer/write ->\n", result.stdout)

    def test_files_of_nested_folders_are_checked_in_their_own_folder(self):
        files = {
            "commands/mod.rs": "mod exports;\nmod build;\n",
            "commands/build.rs": "pub fn run() {}\n",
            "commands/exports/mod.rs": "mod plan;\nmod run;\n",
            "commands/exports/plan.rs": "use super::run::Step;\npub struct Plan;\n",
            "commands/exports/run.rs": "use super::plan::Plan;\npub struct Step;\n",
        }
        result = self.run_check(files)
        self.assert_fails(
            result,
            "cycle between files of commands/exports/: plan, run",
            "plan -> run: src/commands/exports/plan.rs:1",
        )
        self.assertNotIn("cycle between files of commands/:", result.stderr)

    def test_a_nested_folder_is_one_member_of_the_folder_above(self):
        # exports/plan.rs uses build.rs, and build.rs uses exports/: exports <-> build.
        files = {
            "commands/mod.rs": "mod exports;\nmod build;\n",
            "commands/build.rs": "use super::exports::journal;\n",
            "commands/exports/mod.rs": "pub mod journal;\nmod plan;\n",
            "commands/exports/journal.rs": "pub fn find() {}\n",
            "commands/exports/plan.rs": "fn f() { crate::commands::build::run() }\n",
        }
        self.assert_fails(
            self.run_check(files),
            "cycle between files of commands/: build, exports",
            "exports -> build: src/commands/exports/plan.rs:1",
        )

    def test_test_modules_in_a_file_of_their_own_count_for_their_includer(self):
        # cached.rs includes cached_tests.rs as its `tests` module: the test's
        # use of content.rs is cached.rs's, and content.rs uses cached.rs.
        files = {
            "layer/mod.rs": "mod cached;\nmod content;\n",
            "layer/cached.rs": '#[cfg(test)]\n#[path = "cached_tests.rs"]\nmod tests;\npub fn take() {}\n',
            "layer/cached_tests.rs": "use super::*;\nuse crate::layer::content::hint;\n",
            "layer/content.rs": "pub fn hint() { super::cached::take() }\n",
        }
        result = self.run_check(files)
        self.assert_fails(
            result,
            "cycle between files of layer/: cached, content",
            "cached -> content: src/layer/cached_tests.rs:2",
        )

    def test_inline_test_modules_count_between_files(self):
        files = {
            "layer/mod.rs": "mod progress;\nmod write;\n",
            "layer/write.rs": "use super::progress::Ticker;\n",
            "layer/progress.rs": "pub struct Ticker;\n#[cfg(test)]\nmod tests {\n    use super::super::write;\n}\n",
        }
        self.assert_fails(
            self.run_check(files),
            "cycle between files of layer/: progress, write",
            "progress -> write: src/layer/progress.rs:4",
        )

    def test_the_repo_src_passes(self):
        self.assert_passes(self.run_script())

    def test_the_real_tree_is_read_and_its_graph_printed(self):
        result = self.run_script("--graph")
        self.assertEqual(result.returncode, 0, result.stderr)
        graph = result.stdout.splitlines()
        modules = sorted(p.stem for p in REPO_SRC.iterdir() if p.stem not in ("lib", "main"))
        self.assertEqual([line.split(" ->")[0] for line in graph[: len(set(modules))]], sorted(set(modules)))
        self.assertTrue(any(line.startswith("cli -> ") for line in graph), result.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=1)
