"""Dependencies run one way: every import inside ``src/dualmap`` is parsed (``ast``, nothing is imported) and
checked against the layer order of docs/architecture.md ("Layers"):

1. no *upward* import: a unit imports only units of a lower layer (or itself); two different units of the
   same layer do not import each other, and nothing imports the package root ``dualmap`` (the facade);
2. no *private* import across units: not a private module of another subpackage (``dualmap.maps._search``),
   nor a private name (``_start_backend``) of another unit. The top-level private modules (``dualmap._io``,
   ``dualmap._backend``, ...) are the package's shared internals and may be imported from anywhere.

A *unit* is a subpackage (``dualmap.maps``) or a top-level module (``dualmap.train``). Imports inside
functions count too: a late import hides a cycle, it does not remove it.

Today's violations are listed in ALLOWED, each with the reason it is there; the test fails on any new one
and on an allowed one that has gone (delete its entry then).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "dualmap"

#: The layers, lowest first (docs/architecture.md, "Layers"). A unit may import units of lower layers.
LAYERS = [
    {"_version"},
    {"_backend", "_validation", "_scoring", "_io", "_progress", "_threads", "_parallel", "_neighbours",
     "_sklearn_compat", "data"},
    {"network"},
    {"swim"},
    {"train"},
    {"maps"},
    {"metrics"},
    {"dynamics", "inverse"},
    {"attribution"},
    {"report"},
    {"study"},
    {"cli"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

#: (importing module, imported module, name or None, kind) → why it is allowed for now. The test fails on a
#: violation not listed here, and on an entry that no longer occurs.
ALLOWED = {
    # upward
    # private
}

#: Allowed for good: ``dualmap._sklearn_compat`` exists to be the only import of scikit-learn's private helpers.
BY_DESIGN = {("dualmap.swim.estimators", "dualmap._sklearn_compat", "_fit_context", "private name")}


def _modules():
    """(module name, package the module's relative imports start from, path) for every module of dualmap."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("dualmap",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            yield ".".join(parts[:-1]), ".".join(parts[:-1]), path
        else:
            yield ".".join(parts), ".".join(parts[:-1]), path


def _imports(package: str, path: Path):
    """(imported module, names) of every import of dualmap in the file; names is () for ``import x``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "dualmap":
                    yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "dualmap":
                yield target, tuple(alias.name for alias in node.names)


def _unit(module: str) -> str | None:
    """``dualmap.maps._search`` → ``maps``; the package root → None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations():
    """Every violation of the rules in the module docstring, as (importer, imported, name, kind)."""
    found = set()
    for module, package, path in _modules():
        source = _unit(module)
        if source is None:
            continue                                # the root is the facade: it may name everything (lazily)
        assert source in RANK, f"{module}: unit {source!r} is in no layer of LAYERS (docs/architecture.md)"
        for target, names in _imports(package, path):
            unit = _unit(target)
            if unit == source:
                continue
            if unit is None or RANK[unit] >= RANK[source]:
                found.add((module, target, None, "upward"))
            inner = target.split(".")[2:]             # the modules below the unit: maps._search → ["_search"]
            if any(_private(part) for part in inner):
                found.add((module, target, None, "private module"))
            for name in names:
                if _private(name):
                    found.add((module, target, name, "private name"))
    return found


def test_every_unit_has_a_layer():
    units = {_unit(module) for module, _, _ in _modules()} - {None}
    assert units <= set(RANK), f"add {sorted(units - set(RANK))} to LAYERS and docs/architecture.md"


def test_no_new_upward_or_private_imports():
    found = violations() - BY_DESIGN
    new = sorted(found - set(ALLOWED), key=str)
    assert not new, "imports against docs/architecture.md (Layers):\n" + "\n".join(
        f"  {importer} imports {name + ' from ' if name else ''}{imported} ({kind})"
        for importer, imported, name, kind in new)
    gone = sorted(set(ALLOWED) - found, key=str)
    assert not gone, "fixed: delete these entries of ALLOWED:\n" + "\n".join(f"  {entry}" for entry in gone)


def test_the_checker_catches_upward_and_private_imports(tmp_path, monkeypatch):
    """The rules on a made-up package: each kind of violation is found, the allowed imports are not."""
    fake = tmp_path / "dualmap"
    (fake / "maps").mkdir(parents=True)
    (fake / "__init__.py").write_text("from ._version import __version__\n")
    (fake / "_io.py").write_text("")
    (fake / "network.py").write_text("from .maps import to_pairs\nfrom ._io import save_archive\n")
    (fake / "maps" / "__init__.py").write_text("from ._search import nearest_points\n")
    (fake / "maps" / "_search.py").write_text("from .. import __version__\n")
    (fake / "metrics.py").write_text("def f():\n    from dualmap.maps._search import nearest_points, _helper\n"
                                     "    from .network import MLP\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert violations() == {
        ("dualmap.network", "dualmap.maps", None, "upward"),
        ("dualmap.maps._search", "dualmap", None, "upward"),
        ("dualmap.metrics", "dualmap.maps._search", None, "private module"),
        ("dualmap.metrics", "dualmap.maps._search", "_helper", "private name"),
    }
