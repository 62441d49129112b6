"""The shape DESIGN.md gives the code: which stage may import which, no import cycles, and a
runtime that loads one backend without the engine or torch's training stack."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"tracetutor": ROOT / "src" / "tracetutor", "tracetutor.train": ROOT / "train",
            "tracetutor.export": ROOT / "export", "tracetutor.runtime": ROOT / "runtime",
            "tracetutor.apps": ROOT / "apps"}
STAGES = ("train", "export", "runtime", "apps")
# DESIGN.md's table: what each place may import besides itself and the core
MAY_IMPORT = {"core": set(), "train": {"runtime"}, "export": {"runtime"}, "runtime": set(), "apps": {"runtime"}}
ENTRY_POINTS = {"tracetutor.cli", "tracetutor.pipeline"}  # they run stages, importing each lazily
# the benchmark's robustness probes draw new numbers and names from the curriculum's own generators
# (plain Python, no torch); nothing else in apps/ reads train/
ALSO_ALLOWED = {"tracetutor.apps.probes": {"tracetutor.train.curriculum"}}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            if package == "tracetutor" and parts[0] in STAGES:
                continue
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported tracetutor module, imported at module level) for each import in the file."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = {id(node) for node in tree.body}
    for node in tree.body:  # imports under a module-level if/try still run at import time
        if isinstance(node, (ast.If, ast.Try)):
            top |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        out += [(t, id(node) in top) for t in targets if t in MODULES]
    return out


def _place(module: str) -> str:
    part = module.split(".")[1] if module.count(".") else ""
    return part if part in STAGES else "core"


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_each_place_imports_only_what_design_allows():
    wrong = []
    for name, imports in GRAPH.items():
        if name in ENTRY_POINTS:
            continue
        allowed = {_place(name), "core"} | MAY_IMPORT[_place(name)]
        wrong += [f"{name} imports {target}" for target, _ in imports
                  if _place(target) not in allowed and target not in ALSO_ALLOWED.get(name, ())]
    assert not wrong, "\n".join(wrong)


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def _package_of(module: str) -> str:
    return module if module in PACKAGES and MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def test_no_import_cycles():
    # module-level imports anywhere, and every import (lazy ones too) inside the runtime
    edges = {name: {t for t, top in imports if t != name and t != _package_of(name)
                    and (top or (_place(name) == _place(t) == "runtime"))}
             for name, imports in GRAPH.items()}
    assert _cycle(edges) is None, " -> ".join(_cycle(edges))
    # and between places: no stage reaches back into one that depends on it
    places: dict[str, set[str]] = {}
    for name, imports in GRAPH.items():
        if name not in ENTRY_POINTS:
            places.setdefault(_place(name), set()).update(_place(t) for t, _ in imports if _place(t) != _place(name))
    assert _cycle(places) is None, " -> ".join(_cycle(places))


@pytest.mark.parametrize("module", ["tracetutor.runtime.llama_backend", "tracetutor.runtime.onnx_backend",
                                    "tracetutor.runtime.torch_backend", "tracetutor.runtime.types"])
def test_a_backend_imports_no_engine(module):
    script = f"import sys, json, {module}; print(json.dumps(sorted(m for m in sys.modules if m.startswith('tracetutor'))))"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    loaded = json.loads(run.stdout)
    assert "tracetutor.runtime.engine" not in loaded and not any(m.startswith("tracetutor.train") for m in loaded)
    assert "torch" not in run.stdout or module.endswith("torch_backend")


def test_public_runtime_api():
    from tracetutor.runtime import Settings, load, unload
    from tracetutor.runtime.engine import load as engine_load

    assert load is engine_load and callable(unload) and Settings().max_new_tokens > 0
