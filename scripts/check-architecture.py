#!/usr/bin/env python3
"""Check the module layering of the stowage crate; fail when it breaks.

Reads every `.rs` file under `src/` and builds the graph of the crate's
top-level modules: `src/foo.rs` and `src/foo/**.rs` are module `foo`;
`src/lib.rs` and `src/main.rs` are the crate root and not in the graph
(`src/bin/` holds other crates and is skipped). It then fails (exit 1) when:

* the graph has a cycle. Modules that depend on each other, directly or
  round a loop, cannot be read, tested or moved one at a time. Every strongly
  connected component of more than one module is reported, as cycles that
  together cover all of its edges, with one file:line for each edge;
* the files of a folder have a cycle, for the same reason one level down.
  Inside each folder (`layer/`, and nested ones such as `commands/exports/`)
  the members are its files and subfolders: an edge a -> b when a file of
  member a names something in sibling b. The folder's own mod.rs (or the
  foo.rs beside foo/) is the folder itself, not a sibling: it may declare,
  re-export and use its children while they use what it defines, and that
  is no cycle. Re-exports are followed: `super::plan_layer`, where mod.rs
  has `pub use walk::plan_layer;`, is a use of walk.rs (through chains of
  re-exports too). A file included with `#[path = "x_tests.rs"] mod tests;`
  belongs to the file that includes it. Reported as "cycle between files of
  layer/: a, b", with the cycles and a file:line for each edge;
* a module named in FORBIDDEN uses what it must not. `cli` parses arguments,
  calls the library and prints results: it must not handle tar archives,
  talk HTTP, open SQLite databases or build JSON itself (serde_json, json!);
* a module in LEAVES depends on a module that is not a leaf. Leaves are the
  small building blocks every other module may use; one that pulls in the
  rest of the crate stops being one. Leaves that do not exist are skipped.

An edge A -> B is any path from a file of A that names `crate::B`: in a `use`
declaration (grouped, nested, multi-line, `pub` or `pub(crate)`), in code
(`crate::b::f()`), or through `super::` that climbs out of A. `crate::Name`,
where the crate root re-exports Name (`pub use error::Error;` in lib.rs),
counts as a use of the module Name comes from. Comments, doc comments and
string and char literals are blanked out first, so `crate::x` in them does
not count. Test code counts: a cycle through a test module (inline or in a
file of its own) is still a cycle to whoever reads it. Names a glob brings
in (`use super::*;`) are not followed to where they live.

Usage: scripts/check-architecture.py [--graph] [SRC_DIR]
  SRC_DIR  the crate's src/ (default: the src/ of the repository holding this
           script)
  --graph  also print the module graph, one `a -> b, c` line per module,
           then each folder's graph of files, `layer/cached -> content, write`
Exit status: 0 when every rule holds, 1 when one breaks, 2 on a usage error.
Python 3.11 standard library only.
"""

import argparse
import bisect
import re
import sys
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

# The rules. Edit these lists, not the code below.

# Leaves may depend only on other leaves.
LEAVES = ["gzip", "digest", "atomic", "scan", "reference", "tar_read", "interrupt"]

# What a module must not use: ("crate", name) is any path into that external
# crate (`use tar::Header;`, `tar::Header::new_gnu()`, `::tar::...`,
# `extern crate tar;`); ("macro", name) is any call of the macro `name!`.
FORBIDDEN = {
    "cli": [
        ("crate", "tar", "cli must not handle tar archives"),
        ("crate", "reqwest", "cli must not talk HTTP"),
        ("crate", "rusqlite", "cli must not open SQLite databases"),
        ("crate", "serde_json", "cli must not build JSON itself"),
        ("macro", "json", "cli must not build JSON itself"),
    ],
}

# --- Reading Rust source -----------------------------------------------------

_RAW_STRING = re.compile(r'[bc]?r(#*)"')
_QUOTED_STRING = re.compile(r'"|[bc]"')
_TOKEN = re.compile(r"r#[A-Za-z_]\w*|[A-Za-z_]\w*|::|\d\w*|\S")


def _blank(text):
    """Spaces for every character of text except newlines, which stay."""
    return "".join(c if c == "\n" else " " for c in text)


def _end_of_block_comment(src, i):
    """Index just past the block comment opening at i (they nest in Rust)."""
    depth, i = 0, i
    while i < len(src):
        if src.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif src.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return i


def _end_of_quoted(src, i):
    """Index just past the "..." literal whose opening quote is at i."""
    i += 1
    while i < len(src):
        if src[i] == "\\":
            i += 2
        elif src[i] == '"':
            return i + 1
        else:
            i += 1
    return i


def _end_of_char_literal(src, i):
    """Index just past the char literal opening at i, or None for a lifetime.

    `'"'`, `'\\''` and `'\\u{1F600}'` are char literals; `'a` in `&'a str`
    and `'outer:` are lifetimes and labels.
    """
    if src.startswith("\\", i + 1):
        end = src.find("'", i + 3)
        return len(src) if end < 0 else end + 1
    if i + 2 < len(src) and src[i + 2] == "'":
        return i + 3
    return None


def strip_comments_and_strings(src):
    """src with comments and string/char literals blanked, same length.

    Newlines are kept, so a line number in the result is the line number in
    src. Handles `//`, `///`, `//!`, nested `/* */`, "..." with escapes,
    b"..." and c"...", raw strings r"...", r#"..."# (br, cr too), and char
    literals such as '"' (which must not open a string).
    """
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        prev_is_ident = i > 0 and (src[i - 1].isalnum() or src[i - 1] == "_")
        end = None
        if src.startswith("//", i):
            end = src.find("\n", i)
            end = n if end < 0 else end
        elif src.startswith("/*", i):
            end = _end_of_block_comment(src, i)
        elif not prev_is_ident and (m := _RAW_STRING.match(src, i)):
            closing = '"' + m.group(1)
            found = src.find(closing, m.end())
            end = n if found < 0 else found + len(closing)
        elif (c == '"' or not prev_is_ident) and (m := _QUOTED_STRING.match(src, i)):
            end = _end_of_quoted(src, m.end() - 1)
        elif c == "'" or (c == "b" and not prev_is_ident and src.startswith("b'", i)):
            start = i + 1 if c == "b" else i
            end = _end_of_char_literal(src, start)
            if end is None:  # a lifetime or label: ordinary code
                out.append(src[i : start + 1])
                i = start + 1
                continue
        if end is None:
            out.append(c)
            i += 1
        else:
            out.append(_blank(src[i:end]))
            i = end
    return "".join(out)


@dataclass
class Token:
    text: str
    line: int
    mods: tuple = ()  # the inline `mod x { ... }` blocks the token sits in


def tokenize(code):
    """Tokens of comment- and string-free code, each with its line number."""
    newlines = [i for i, c in enumerate(code) if c == "\n"]
    tokens, stack, depth = [], [], 0  # stack: (mod name, brace depth inside it)
    for m in _TOKEN.finditer(code):
        text = m.group()
        line = bisect.bisect_left(newlines, m.start()) + 1
        if text == "{":
            depth += 1
            if len(tokens) >= 2 and tokens[-2].text == "mod":
                stack.append((tokens[-1].text, depth))
        elif text == "}":
            if stack and stack[-1][1] == depth:
                stack.pop()
            depth -= 1
        tokens.append(Token(text, line, tuple(name for name, _ in stack)))
    return tokens


def _is_ident(text):
    return text[0].isalpha() or text[0] == "_" or text.startswith("r#")


# --- Paths in a file ---------------------------------------------------------


@dataclass
class PathRef:
    """A path as written: its segments and the line of each."""

    segments: list
    lines: list
    mods: tuple  # inline modules it is written in (for super::)
    leading_colons: bool = False  # `::tar::x`


def _parse_use_tree(tokens, i, prefix, out, mods):
    """Parse one use-tree starting at tokens[i]; append its paths to out.

    prefix is a (segments, lines) pair of what the enclosing groups already
    named. Returns the index just past the tree.
    """
    segs, lines = list(prefix[0]), list(prefix[1])
    leading = False
    if i < len(tokens) and tokens[i].text == "::" and not segs:
        leading, i = True, i + 1
    while i < len(tokens):
        t = tokens[i]
        if t.text == "{":
            i += 1
            while i < len(tokens) and tokens[i].text != "}":
                if tokens[i].text == ",":
                    i += 1
                    continue
                before = i
                i = _parse_use_tree(tokens, i, (segs, lines), out, mods)
                if i == before:  # not a tree: skip the token
                    i += 1
            return i + 1
        if t.text == "*" or _is_ident(t.text):
            segs.append(t.text)
            lines.append(t.line)
            i += 1
            if i < len(tokens) and tokens[i].text == "::":
                i += 1
                continue
            if i + 1 < len(tokens) and tokens[i].text == "as":
                i += 2
        break
    if len(segs) > len(prefix[0]):
        out.append(PathRef(segs, lines, mods, leading))
    return i


def use_paths(tokens):
    """Every path a `use` declaration names, groups expanded, and the spans
    of tokens the declarations take (so they are not read twice)."""
    paths, spans, i = [], [], 0
    while i < len(tokens):
        if tokens[i].text == "use" and i + 1 < len(tokens) and tokens[i + 1].text != "<":
            start, out = i, []
            i = _parse_use_tree(tokens, i + 1, ([], []), out, tokens[i].mods)
            while i < len(tokens) and tokens[i].text != ";":
                i += 1
            paths.extend(out)
            spans.append((start, i))
        i += 1
    return paths, spans


def inline_paths(tokens, skip):
    """Paths written in code outside `use`: `crate::a::f()`, `tar::Header`,
    `super::x::Y`. Only the path's root and the segments after it matter."""
    skipped = set()
    for start, end in skip:
        skipped.update(range(start, end + 1))
    paths = []
    for i, t in enumerate(tokens):
        if i in skipped or not _is_ident(t.text):
            continue
        if i + 1 >= len(tokens) or tokens[i + 1].text != "::":
            continue
        leading = False
        if i > 0 and tokens[i - 1].text == "::":
            # `a::b`: b is not a root. `(::tar::x` and `= ::tar::x` are.
            before = tokens[i - 2].text if i > 1 else ""
            if before and (_is_ident(before) or before in (">", ")")):
                continue
            leading = True
        segs, lines, j = [], [], i
        while j < len(tokens) and _is_ident(tokens[j].text):
            segs.append(tokens[j].text)
            lines.append(tokens[j].line)
            if j + 1 < len(tokens) and tokens[j + 1].text == "::":
                j += 2
            else:
                break
        paths.append(PathRef(segs, lines, t.mods, leading))
    return paths


def macro_calls(tokens):
    """(name, line) of every `name!(...)`, `name![...]`, `name! {...}`."""
    calls = []
    for i in range(len(tokens) - 2):
        if (
            _is_ident(tokens[i].text)
            and tokens[i + 1].text == "!"
            and tokens[i + 2].text in ("(", "[", "{")
        ):
            calls.append((tokens[i].text, tokens[i].line))
    return calls


def extern_crates(tokens):
    """(name, line) of every `extern crate name;`."""
    return [
        (tokens[i + 2].text, tokens[i + 2].line)
        for i in range(len(tokens) - 2)
        if tokens[i].text == "extern" and tokens[i + 1].text == "crate"
    ]


# --- From files to the module graph ------------------------------------------


@dataclass
class SourceFile:
    path: Path
    shown: str  # path as printed, e.g. src/registry/auth.rs
    module: str  # top-level module, e.g. registry
    module_path: list  # e.g. ["registry", "auth"]
    tokens: list = field(default_factory=list)


def module_path_of(rel):
    """["registry", "auth"] for registry/auth.rs; ["registry"] for
    registry/mod.rs or registry.rs; None for the crate root and src/bin/."""
    parts = list(rel.parts)
    if len(parts) == 1 and parts[0] in ("lib.rs", "main.rs"):
        return None
    if parts[0] == "bin":
        return None
    parts[-1] = parts[-1][: -len(".rs")]
    if parts[-1] == "mod":
        parts.pop()
    return parts


_PATH_ATTRIBUTE = re.compile(
    r'#\[\s*path\s*=\s*"([^"]+)"\s*\]\s*(?:#\[[^\]]*\]\s*)*'
    r"(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+([A-Za-z_]\w*)\s*;"
)


def path_attribute_modules(text, code, declared_in, module_path):
    """{file: module path} for each `#[path = "x.rs"] mod name;` in a file:
    the file named is module `name` of the declaring file, wherever it lies
    (split.rs's `#[path = "split_tests.rs"] mod tests;` is split::tests).
    code is text with comments and strings blanked, to skip commented-out
    declarations. The path is relative to the declaring file's folder."""
    found = {}
    for m in _PATH_ATTRIBUTE.finditer(text):
        if code[m.start()] != "#":
            continue
        target = (declared_in.parent / m.group(1)).resolve()
        found[target] = module_path + [m.group(2)]
    return found


def read_sources(src_dir):
    """The crate's module files, and the crate root's tokens (lib.rs)."""
    files, root_tokens, declared = [], [], {}
    for path in sorted(src_dir.rglob("*.rs")):
        rel = path.relative_to(src_dir)
        text = path.read_text(encoding="utf-8", errors="replace")
        code = strip_comments_and_strings(text)
        tokens = tokenize(code)
        if rel.parts == ("lib.rs",):
            root_tokens = tokens
        mod_path = module_path_of(rel)
        if not mod_path:
            continue
        declared.update(path_attribute_modules(text, code, path, mod_path))
        shown = f"{src_dir.name}/{rel.as_posix()}"
        files.append(SourceFile(path, shown, mod_path[0], mod_path, tokens))
    for f in files:
        module_path = declared.get(f.path.resolve())
        if module_path:
            f.module, f.module_path = module_path[0], module_path
    return files, root_tokens


def root_reexports(root_tokens, modules):
    """{Name: module} for what lib.rs re-exports: `pub use error::Error;`."""
    names = {}
    paths, _ = use_paths(root_tokens)
    for p in paths:
        segs = p.segments[1:] if p.segments[0] in ("crate", "self") else p.segments
        if len(segs) >= 2 and segs[0] in modules and segs[-1] not in ("*", "self"):
            names[segs[-1]] = segs[0]
    return names


def resolve_target(path, file, modules, reexports):
    """(top-level module, line) that a path leads to inside the crate, or
    None when it leads elsewhere (std, other crates, the same module...)."""
    segs = path.segments
    if path.leading_colons or not segs:
        return None
    if segs[0] in ("crate", "$crate"):
        i = 1
    elif segs[0] in ("super", "self"):
        here = file.module_path + list(path.mods)
        i = 0
        while i < len(segs) and segs[i] in ("super", "self"):
            if segs[i] == "super":
                if not here:
                    return None  # climbs above the crate root: not valid Rust
                here.pop()
            i += 1
        if here:
            return (here[0], path.lines[0])
    else:
        return None
    if i >= len(segs):
        return None
    name = segs[i]
    if name in modules:
        return (name, path.lines[i])
    if name in reexports:
        return (reexports[name], path.lines[i])
    return None


def external_crate(path):
    """The external crate a path starts in (`tar` for `tar::Header`), if
    its root is not a keyword of the crate's own paths."""
    if not path.segments or path.segments[0] in ("crate", "$crate", "self", "super", "Self"):
        return None
    return path.segments[0]


@dataclass
class Graph:
    modules: set
    # edges[a][b]: every (file, line) where a refers to b
    edges: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    def add(self, a, b, where):
        if a != b:
            if where not in self.edges[a][b]:
                self.edges[a][b].append(where)

    def successors(self, a):
        return sorted(self.edges.get(a, {}))

    def edge_count(self):
        return sum(len(targets) for targets in self.edges.values())


def file_paths(file):
    """Every path file names: in `use` declarations and in code."""
    in_use, spans = use_paths(file.tokens)
    return in_use + inline_paths(file.tokens, spans)


def build_graph(files, root_tokens):
    modules = {f.module for f in files}
    reexports = root_reexports(root_tokens, modules)
    graph = Graph(modules)
    for f in files:
        for p in file_paths(f):
            target = resolve_target(p, f, modules, reexports)
            if target:
                graph.add(f.module, target[0], (f.shown, target[1]))
    return graph


# --- The rules ---------------------------------------------------------------


def strongly_connected(graph):
    """Strongly connected components (Tarjan), each a sorted list."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.successors(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    for v in sorted(graph.modules):
        if v not in index:
            visit(v)
    return sorted(comps)


def _shortest_path(graph, start, goal, within):
    """Shortest module path start -> ... -> goal using only modules in within."""
    came_from, queue = {start: None}, deque([start])
    while queue:
        v = queue.popleft()
        if v == goal:
            path = []
            while v is not None:
                path.append(v)
                v = came_from[v]
            return path[::-1]
        for w in graph.successors(v):
            if w in within and w not in came_from:
                came_from[w] = v
                queue.append(w)
    return None


def cycles_covering(graph, component):
    """Cycles inside component that between them use each of its edges:
    breaking all of them is what it takes to untangle the component."""
    members, covered, cycles = set(component), set(), []
    for a in component:
        for b in graph.successors(a):
            if b not in members or (a, b) in covered:
                continue
            back = _shortest_path(graph, b, a, members)
            cycle = [a] + back
            covered.update(zip(cycle, cycle[1:]))
            cycles.append(cycle)
    return cycles


def cycle_problems(graph, heading="cycle between modules {members}:"):
    problems = []
    for comp in strongly_connected(graph):
        if len(comp) < 2:
            continue
        lines = [heading.format(members=", ".join(comp))]
        for cycle in cycles_covering(graph, comp):
            lines.append("  " + " -> ".join(cycle))
            for a, b in zip(cycle, cycle[1:]):
                shown, line = graph.edges[a][b][0]
                lines.append(f"      {a} -> {b}: {shown}:{line}")
        problems.append("\n".join(lines))
    return problems


def leaf_problems(graph, leaves=LEAVES):
    problems = []
    for a in sorted(set(leaves) & graph.modules):
        for b in graph.successors(a):
            if b not in leaves:
                for shown, line in graph.edges[a][b]:
                    problems.append(
                        f"{shown}:{line}: leaf module {a} uses {b}, which is not a leaf"
                        f" (leaves: {', '.join(leaves)})"
                    )
    return problems


def forbidden_problems(files, forbidden=FORBIDDEN):
    problems = []
    for f in files:
        rules = forbidden.get(f.module, [])
        if not rules:
            continue
        crates = {name: why for kind, name, why in rules if kind == "crate"}
        macros = {name: why for kind, name, why in rules if kind == "macro"}
        found = []
        for p in file_paths(f):
            name = external_crate(p)
            if name in crates:
                found.append((p.lines[0], f"uses crate {name}: {crates[name]}"))
        for name, line in extern_crates(f.tokens):
            if name in crates:
                found.append((line, f"uses crate {name}: {crates[name]}"))
        for name, line in macro_calls(f.tokens):
            if name in macros:
                found.append((line, f"uses macro {name}!: {macros[name]}"))
        problems += [f"{f.shown}:{line}: {what}" for line, what in sorted(set(found))]
    return problems


# --- Files inside a folder ---------------------------------------------------


def folder_reexports(files, module_paths):
    """{(module path, Name): module path} for the names a module's `use`
    declarations bring in from its own descendants (`pub use walk::plan_layer;`
    in layer/mod.rs), so `super::plan_layer` in a sibling counts as a use of
    walk.rs, where it lives. A name brought in from anywhere else is left
    alone: the module that names it is the one used."""
    names = {}
    for f in files:
        here = tuple(f.module_path)
        paths, _ = use_paths(f.tokens)
        for p in paths:
            if p.segments[-1] in ("*", "self") or len(p.segments) < 2:
                continue
            named = _named_modules(p, f, module_paths, relative=True)
            target = named[0] if named else ()
            if len(target) > len(here) and target[: len(here)] == here:
                names[(here, p.segments[-1])] = target
    return names


def _named_modules(path, file, module_paths, relative=False):
    """(module path, index of the first segment past it) for the modules a
    path names, as deep as its segments are modules and before any
    re-export is followed; None when it leads out of the crate. With
    relative, a path that starts with a child's name (`walk::x` in a `use`
    of layer/mod.rs) starts in the file's module."""
    segs = path.segments
    if path.leading_colons or not segs:
        return None
    here = list(file.module_path) + list(path.mods)
    if segs[0] in ("crate", "$crate"):
        here, i = [], 1
    elif segs[0] in ("super", "self"):
        i = 0
        while i < len(segs) and segs[i] in ("super", "self"):
            if segs[i] == "super":
                if not here:
                    return None  # climbs above the crate root: not valid Rust
                here.pop()
            i += 1
    elif relative and tuple(here) + (segs[0],) in module_paths:
        i = 0
    else:
        return None
    here = tuple(here)
    while i < len(segs) and here + (segs[i],) in module_paths:
        here, i = here + (segs[i],), i + 1
    return here, i


def resolve_module_path(path, file, module_paths, reexports):
    """The module path (a tuple) a path leads to inside the crate, as deep
    as it names modules and through the re-exports on its way, or None when
    it leads elsewhere."""
    named = _named_modules(path, file, module_paths)
    if not named:
        return None
    here, i = named
    segs = path.segments
    # A re-export may name another's (mod.rs re-exports what inner/mod.rs
    # re-exports); each step goes deeper, so the chain ends.
    while i < len(segs) and (here, segs[i]) in reexports:
        here = reexports[(here, segs[i])]
    return here or None


def build_folder_graphs(files):
    """{folder: Graph} of the files (and subfolders) directly inside each
    folder: an edge a -> b when a file under a names something under its
    sibling b. mod.rs is the folder itself, not a sibling, so a folder's
    mod.rs that re-exports its children and children that use what mod.rs
    defines make no cycle; two siblings that use each other do."""
    module_paths = {tuple(f.module_path) for f in files}
    reexports = folder_reexports(files, module_paths)
    graphs = {}
    for f in files:
        mine = tuple(f.module_path)
        # Every file is a member of each folder it lies in, with edges or not.
        for depth in range(1, len(mine)):
            folder = "/".join(mine[:depth])
            graphs.setdefault(folder, Graph(set())).modules.add(mine[depth])
        for p in file_paths(f):
            target = resolve_module_path(p, f, module_paths, reexports)
            if not target:
                continue
            k = 0
            while k < min(len(mine), len(target)) and mine[k] == target[k]:
                k += 1
            if k == 0 or k >= len(mine) or k >= len(target):
                continue
            folder = "/".join(mine[:k])
            graph = graphs.setdefault(folder, Graph(set()))
            graph.modules.update({mine[k], target[k]})
            graph.add(mine[k], target[k], (f.shown, p.lines[0]))
    return graphs


def folder_cycle_problems(graphs):
    problems = []
    for folder in sorted(graphs):
        heading = f"cycle between files of {folder}/: {{members}}"
        problems += cycle_problems(graphs[folder], heading)
    return problems


# --- Command line ------------------------------------------------------------


def graph_lines(graph):
    lines = []
    for a in sorted(graph.modules):
        targets = graph.successors(a)
        lines.append(f"{a} -> {', '.join(targets)}" if targets else f"{a} ->")
    return lines


def main(argv=None):
    default_src = Path(__file__).resolve().parent.parent / "src"
    parser = argparse.ArgumentParser(
        description="Check the module layering of the crate in SRC_DIR.",
    )
    parser.add_argument("src_dir", nargs="?", type=Path, default=default_src, metavar="SRC_DIR")
    parser.add_argument(
        "--graph", action="store_true", help="print the module graph and each folder's graph of files"
    )
    args = parser.parse_args(argv)
    if not args.src_dir.is_dir():
        parser.error(f"{args.src_dir}: not a directory")

    files, root_tokens = read_sources(args.src_dir)
    graph = build_graph(files, root_tokens)
    folder_graphs = build_folder_graphs(files)
    if args.graph:
        print("\n".join(graph_lines(graph)))
        for folder in sorted(folder_graphs):
            print("\n".join(f"{folder}/{line}" for line in graph_lines(folder_graphs[folder])))

    cycles = cycle_problems(graph)
    folder_cycles = folder_cycle_problems(folder_graphs)
    forbidden = forbidden_problems(files)
    leaves = leaf_problems(graph)
    for problem in cycles + folder_cycles + forbidden + leaves:
        print(f"architecture: {problem}", file=sys.stderr)
    if cycles or folder_cycles or forbidden or leaves:
        print(
            f"architecture: FAILED: {len(cycles)} cycle(s) between modules,"
            f" {len(folder_cycles)} between the files of a folder,"
            f" {len(forbidden)} forbidden use(s), {len(leaves)} leaf rule break(s);"
            " see scripts/check-architecture.py for the rules",
            file=sys.stderr,
        )
        return 1
    rules = ", ".join(f"{m} clean" for m in sorted(FORBIDDEN))
    print(
        f"architecture: {len(graph.modules)} modules, {graph.edge_count()} edges,"
        f" no cycles (modules or files in any folder), {rules}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
