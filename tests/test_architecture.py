"""The house rules of README "Architecture", checked on the source: the data
flows one way (no import cycle in the Python package or between the Rust
core's modules), production code never imports the test oracle
(`reference/`) or another module's private names, files read in one
sitting, and `import arena_fast` stays free of torch."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "arena_fast"
CORE = ROOT / "rust" / "arena-fast-core" / "src"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path):
    """(line, imported module, imported names) for every import in the file,
    function-local ones included, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield node.lineno, target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        deps = set()
        for _, target, names in _imports(name, path):
            for cand in (target, *(f"{target}.{n}" for n in names)):
                if cand in MODULES and cand not in (name, "arena_fast"):
                    deps.add(cand)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, done, stack = [], set(), []

    def visit(node: str) -> None:
        if node in stack:
            found.append([*stack[stack.index(node) :], node])
            return
        if node in done:
            return
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            visit(dep)
        stack.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
    return found


def _production():
    return {n: p for n, p in MODULES.items() if not n.startswith("arena_fast.reference")}


def test_the_checker_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_python_import_cycle():
    assert _cycles(_graph()) == []


def test_production_never_imports_the_reference():
    hits = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in _production().items()
        for line, target, names in _imports(name, path)
        if target.startswith("arena_fast.reference")
        or (target == "arena_fast" and "reference" in names)
    ]
    assert hits == []


def test_no_private_name_of_another_module_is_used():
    hits = []
    for name, path in _production().items():
        source = path.read_text(encoding="utf-8")
        for line, target, names in _imports(name, path):
            if not target.startswith("arena_fast") or target == name:
                continue
            hits += [
                f"{path.relative_to(ROOT)}:{line} from {target} import {n}"
                for n in names
                if n.startswith("_") and n != "_core" and not n.startswith("__")
            ]
        # `module._name` on an arena_fast module imported as `module`
        aliases = {}
        tree = ast.parse(source)
        for _line, target, names in _imports(name, path):
            for n in names:
                if f"{target}.{n}" in MODULES:
                    aliases[n] = f"{target}.{n}"
        for node in ast.walk(tree):
            if isinstance(node, ast.alias) and node.asname and node.name in aliases:
                aliases[node.asname] = aliases[node.name]
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in MODULES and a.asname:
                        aliases[a.asname] = a.name
        hits += [
            f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and aliases.get(node.value.id, name) != name
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.value.id != "_core"
        ]
    assert hits == []


def test_files_read_in_one_sitting():
    long = {
        str(p.relative_to(ROOT)): n
        for p in MODULES.values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_import_arena_fast_loads_no_torch():
    code = (
        "import sys, arena_fast as af\n"
        "af.runs, af.train_config, af.diagnostics, af.dataset, af.sources\n"
        "import arena_fast.cli\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_USE = re.compile(r"\bcrate::(\w+)")


def _rust_graph() -> dict[str, set[str]]:
    modules = {p.stem: p for p in CORE.glob("*.rs") if p.stem not in ("lib", "main")}
    graph = {}
    for name, path in modules.items():
        text = path.read_text(encoding="utf-8")
        # Tests may reach anywhere: only the module's own code counts.
        text = text.split("#[cfg(test)]", 1)[0]
        uses = set(_USE.findall(text))
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            uses.update(w.split("::")[0].strip() for w in group.split(","))
        graph[name] = {u for u in uses if u in modules and u != name}
    return graph


@pytest.mark.skipif(not CORE.is_dir(), reason="the Rust sources are not beside the tests")
def test_no_rust_module_cycle():
    graph = _rust_graph()
    assert len(graph) >= 10, graph  # the checker reads the modules
    assert _cycles(graph) == []
