#!/usr/bin/env python3
"""Fails when modules of a crate import each other, directly or round a longer loop.

    python3 tests/check-module-cycles.py [CRATE_SRC ...]      (default: shared/src)

A module is one file (`a/b.rs` is `a::b`, `a/mod.rs` is `a`). Module A depends on module B when A's
code names a path under `crate::B` (in a `use`, braces expanded, or inline), or `super::` outside its
unit tests. Doc comments and comments are ignored; a `mod x;` declaration is not a dependency. A path
is charged to the longest module prefix it names, so `crate::job::record::Job` is a dependency on
`job::record`, not on `job`. Any strongly connected set of two or more modules is a cycle: the script
prints one loop through each, shortest first, as `a -> b -> a`, and exits 1.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(src: Path, file: Path) -> str:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts)


def strip_comments(text: str) -> str:
    """Drops `//` comments (doc comments too) and `/* */` blocks, keeping string literals' contents
    out of the way well enough for `crate::` paths (none of ours holds one in a string)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*", "", line) for line in text.splitlines())


def expand_use(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` -> [`a::b`, `a::c::d`, `a::c::e`] (whitespace removed first)."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"(::\*|as" + IDENT + r")$", "", tree)]
    prefix, inner = tree[:brace], tree[brace + 1:tree.rfind("}")]
    items, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    out = []
    for item in filter(None, items):
        out += [p for p in expand_use(prefix + item) if p]
    return out


def dependencies(src: Path, file: Path, modules: set[str]) -> set[str]:
    me = module_of(src, file)
    code = strip_comments(file.read_text())
    # Unit tests' `use super::*` names the module itself; below the first `#[cfg(test)]` a
    # `super::` is the module, above it the parent.
    test_at = code.find("#[cfg(test)]")
    paths = []
    for m in re.finditer(r"\buse\s+(crate::[^;]*);", code):
        paths += expand_use(m.group(1))
    paths += re.findall(r"\bcrate::(?:" + IDENT + r"::)*" + IDENT, code)
    for m in re.finditer(r"\bsuper::((?:" + IDENT + r"::)*" + IDENT + r")", code):
        if test_at < 0 or m.start() < test_at:
            parent = me.rsplit("::", 1)[0] if "::" in me else ""
            paths.append("crate::" + (parent + "::" if parent else "") + m.group(1))
    deps = set()
    for path in paths:
        parts = path.split("::")[1:]
        for n in range(len(parts), 0, -1):
            candidate = "::".join(parts[:n])
            if candidate in modules:
                if candidate != me:
                    deps.add(candidate)
                break
    return deps


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def shortest_loop(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    best: list[str] = []
    members = set(comp)
    for start in comp:
        prev, frontier, found = {start: None}, [start], None
        while frontier and not found:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & members):
                    if w == start:
                        found = v
                        break
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found:
                    break
            frontier = nxt
        if found:
            path, v = [], found
            while v is not None:
                path.append(v)
                v = prev[v]
            loop = list(reversed(path)) + [start]
            if not best or len(loop) < len(best):
                best = loop
    return best


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path(__file__).resolve().parent.parent / "shared" / "src"]
    failed = False
    for src in roots:
        files = sorted(src.rglob("*.rs"))
        modules = {module_of(src, f) for f in files}
        graph = {module_of(src, f): dependencies(src, f, modules) for f in files}
        cycles = strongly_connected(graph)
        for comp in cycles:
            print(f"{src}: modules import each other: {' -> '.join(shortest_loop(graph, comp))}"
                  + (f" (all of {', '.join(comp)} are in one loop)" if len(comp) > 2 else ""),
                  file=sys.stderr)
        failed |= bool(cycles)
        if not cycles:
            print(f"module cycles: none in {src} ({len(modules)} modules)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
