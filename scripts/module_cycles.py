#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a cycle.

    python3 scripts/module_cycles.py [CRATE_DIR ...]   (default: every crate of the workspace)

A module is a file (``src/kubernetes/job.rs`` is ``kubernetes::job``). Module A depends on B
when A's code names something of B through ``crate::``, ``super::`` or ``self::`` paths, in
``use`` items or inline. A name that a parent module only re-exports (``pub use job::Job;`` in
``spec/mod.rs``) counts as the module that defines it, so a cycle through a facade is still
found; the facade's re-exports themselves are not dependencies. Tests (everything from the
first top-level ``#[cfg(test)]`` of a file on) are left out: a test may look anywhere.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
USE = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
INLINE = re.compile(rf"\b(?:crate|super|self)(?:::{IDENT})+")


def strip(text: str) -> str:
    """The code of a file without comments, strings and tests."""
    cut = re.search(r"^#\[cfg\(test\)\]", text, re.M)
    if cut:
        text = text[: cut.start()]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def expand(tree: str) -> list[list[str]]:
    """``a::{b, c::{d, e}}`` as paths ``[a, b]``, ``[a, c, d]``, ``[a, c, e]``."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace == -1:
        path = tree.split(" as ")[0]
        return [[part for part in path.split("::") if part]]
    prefix = [part for part in tree[:brace].split("::") if part]
    inner, depth, items, start = tree[brace + 1 : tree.rfind("}")], 0, [], 0
    for i, char in enumerate(inner):
        depth += char == "{"
        depth -= char == "}"
        if char == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    return [prefix + rest for item in items if item for rest in expand(item)]


def module_of(src: Path, file: Path) -> tuple[str, ...]:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def crate_modules(src: Path) -> dict[tuple[str, ...], str]:
    return {
        module_of(src, file): strip(file.read_text(encoding="utf-8"))
        for file in sorted(src.rglob("*.rs"))
        if "bin" not in file.relative_to(src).parts
    }


def absolute(module: tuple[str, ...], path: list[str]) -> list[str] | None:
    """A ``crate::``/``super::``/``self::`` path from ``module`` as a path from the crate root."""
    here = list(module)
    while path and path[0] in ("super", "self", "crate"):
        head = path.pop(0)
        if head == "crate":
            here = []
        elif head == "super":
            if not here:
                return None
            here.pop()
    return here + path


def check(crate: Path) -> list[str]:
    src = crate / "src"
    modules = crate_modules(src)
    # What each module re-exports from its children: name -> child module.
    reexports: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
    for module, code in modules.items():
        for public, tree in USE.findall(code):
            if not public:
                continue
            for path in expand(tree):
                target = absolute(module, path)
                if target and target[-1] != "*":
                    owner = resolve(modules, reexports, target[:-1] or [], target[-1])
                    if owner and owner != module:
                        reexports.setdefault(module, {})[target[-1]] = owner
    edges: dict[tuple[str, ...], set[tuple[str, ...]]] = {module: set() for module in modules}
    for module, code in modules.items():
        paths = []
        for public, tree in USE.findall(code):
            for path in expand(tree):
                target = absolute(module, list(path))
                is_child = target is not None and tuple(target[: len(module) + 1])[:-1] == module
                if public and is_child:
                    continue  # a facade's re-export of its own children
                paths.append(path)
        code_without_uses = USE.sub("", code)
        paths += [match.split("::") for match in INLINE.findall(code_without_uses)]
        for path in paths:
            if path[0] not in ("crate", "super", "self"):
                continue
            target = absolute(module, list(path))
            if target is None:
                continue
            owner = deepest(modules, reexports, target)
            if owner is not None and owner != module:
                edges[module].add(owner)
    return cycles(edges)


def resolve(modules, reexports, module_path, name):
    module = tuple(module_path)
    if (*module, name) in modules:
        return (*module, name)
    if name in reexports.get(module, {}):
        return reexports[module][name]
    return module if module in modules else None


def deepest(modules, reexports, path: list[str]) -> tuple[str, ...] | None:
    """The module that defines what ``path`` names."""
    for length in range(len(path), -1, -1):
        prefix = tuple(path[:length])
        if prefix in modules:
            rest = path[length:]
            if rest and rest[0] in reexports.get(prefix, {}):
                return reexports[prefix][rest[0]]
            return prefix
    return None


def cycles(edges: dict[tuple[str, ...], set[tuple[str, ...]]]) -> list[str]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[tuple[str, ...], int] = {}
    low: dict[tuple[str, ...], int] = {}
    stack: list[tuple[str, ...]] = []
    found: list[str] = []

    def visit(node: tuple[str, ...]) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                other = stack.pop()
                group.append(other)
                if other == node:
                    break
            if len(group) > 1:
                names = sorted("::".join(each) or "crate" for each in group)
                found.append(" <-> ".join(names))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    crates = [Path(arg) for arg in sys.argv[1:]] or sorted(
        path.parent for path in ROOT.glob("*/Cargo.toml") if (path.parent / "src").is_dir()
    )
    failed = False
    for crate in crates:
        for cycle in check(crate):
            print(f"{crate.name}: import cycle: {cycle}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
