"""The house's rooms: every import of src/polarity (function-level ones included) points down
the layers below, or sideways within one, and there is no import circle."""

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"
#: Bottom first. A module may import its own layer's and lower layers' modules only.
LAYERS = [
    {"version", "errors", "labels", "registry", "contract", "configfile", "folders", "cpu"},
    {"cache", "preprocess", "prompt", "modelcard", "drift", "quantize", "int8_rows"},
    {"data", "pull"},
    {"backends"},
    {"classifier", "export"},
    {"predictor", "ray_cluster"},
    {"serve", "batch", "evaluate", "train"},
    {"cli", "__main__", ""},  # "": the package itself, the public API
]


def modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "polarity").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, known: dict) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in known:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if f"{node.module}.{a.name}" in known}
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(module: str) -> int:
    return next(i for i, rooms in enumerate(LAYERS) if room(module) in rooms)


def test_every_module_has_a_layer_and_imports_only_downwards():
    known = modules()
    upward = []
    for name, path in known.items():
        for target in imports(path, known):
            if target != name and layer(target) > layer(name):
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_there_is_no_import_circle():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    done, path = set(), []

    def visit(node):
        if node in path:
            raise AssertionError(" -> ".join(path[path.index(node):] + [node]))
        if node in done:
            return
        path.append(node)
        for target in graph[node]:
            if not target.startswith(node + "."):  # a package importing its own modules
                visit(target)
        path.pop()
        done.add(node)

    for node in graph:
        visit(node)
