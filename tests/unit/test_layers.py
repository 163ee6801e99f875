"""The import rule, checked on the source: dependencies point one way.

    contract (schemas) <- the user's language (definitions) <- workers (consumers)
    contract (schemas) <- producers
    the front door (assetpipe's own modules: cli, stack, api, ...) on top of everything

Workers publish through the one Kafka writer, so ``consumers`` may import ``producers.publisher`` and
``producers.exceptions`` and nothing else of ``producers``. The compiled Avro engine ``schemas.binary`` is
private to the contract: only ``schemas.codec`` and ``schemas.encoder`` reach it. A module's imports are read
from its syntax tree, those inside functions and ``TYPE_CHECKING`` blocks included.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "schemas": "assetpipe.schemas",
    "definitions": "assetpipe.definitions",
    "producers": "assetpipe.producers",
    "consumers": "assetpipe.consumers",
    "assetpipe": "assetpipe",
}

# what each layer may import of assetpipe (besides itself)
ALLOWED: dict[str, tuple[str, ...]] = {
    "assetpipe.schemas": (),
    "assetpipe.definitions": ("assetpipe.schemas",),
    "assetpipe.producers": ("assetpipe.schemas",),
    "assetpipe.consumers": (
        "assetpipe.schemas",
        "assetpipe.definitions",
        "assetpipe.producers.publisher",
        "assetpipe.producers.exceptions",
        "assetpipe.schemas.encoder",
    ),
}


def modules() -> Iterator[tuple[str, Path]]:
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package, *parts)), path


def imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def layer_of(module: str) -> str | None:
    return next((layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")), None)


def within(module: str, allowed: tuple[str, ...]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


PRIVATE = "assetpipe.schemas.binary"
PRIVATE_USERS = ("assetpipe.schemas.codec", "assetpipe.schemas.encoder", PRIVATE)


def violations() -> list[str]:
    found = []
    for module, path in modules():
        if not within(module, PRIVATE_USERS):
            found += [f"{path.relative_to(ROOT)}:{line}: {module} imports the private {imported}"
                      for line, imported in imports(path) if within(imported, (PRIVATE,))]  # fmt: skip
        layer = layer_of(module)
        if layer is None:  # the front door: it may import anything
            continue
        for line, imported in imports(path):
            if imported.split(".")[0] != "assetpipe" or within(imported, (layer,)):
                continue
            if layer_of(imported) is None and imported != "assetpipe":
                found.append(f"{path.relative_to(ROOT)}:{line}: {module} imports the front door ({imported})")
            elif imported == "assetpipe" or not within(imported, ALLOWED[layer]):
                found.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {imported}")
    return found


def test_every_import_points_down_the_layers() -> None:
    assert violations() == []


def test_nothing_imports_the_old_top_level_names() -> None:
    """``schemas``, ``producers`` and ``consumers`` are installed as ``assetpipe.*`` only."""
    stale = [
        f"{path.relative_to(ROOT)}:{line}: {imported}"
        for folder in (*PACKAGES, "tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, imported in imports(path)
        if imported.split(".")[0] in ("schemas", "producers", "consumers", "definitions")
    ]
    assert stale == []


def test_the_rule_catches_a_caller_of_the_private_engine() -> None:
    module = ROOT / "producers" / "_layer_probe.py"
    module.write_text("from assetpipe.schemas.binary import report\n")
    try:
        assert violations() == [
            "producers/_layer_probe.py:1: assetpipe.producers._layer_probe imports the private "
            "assetpipe.schemas.binary",
            "producers/_layer_probe.py:1: assetpipe.producers._layer_probe imports the private "
            "assetpipe.schemas.binary.report",
        ]
    finally:
        module.unlink()


def test_the_rule_catches_a_contract_module_importing_a_worker(tmp_path: Path) -> None:
    module = ROOT / "schemas" / "_layer_probe.py"
    module.write_text("from assetpipe.consumers.loop import ConsumerLoop\n")
    try:
        assert violations() == [
            "schemas/_layer_probe.py:1: assetpipe.schemas._layer_probe imports assetpipe.consumers.loop",
            "schemas/_layer_probe.py:1: assetpipe.schemas._layer_probe imports assetpipe.consumers.loop.ConsumerLoop",
        ]
    finally:
        module.unlink()


def test_every_third_party_package_imported_is_declared() -> None:
    declared = {
        re.split(r"[\[<>=~!; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in metadata.requires("assetpipe") or []
        if "extra ==" not in requirement
    }
    providers = metadata.packages_distributions()
    undeclared = set()
    for _, path in modules():
        for _, imported in imports(path):
            top = imported.split(".")[0]
            if top in sys.stdlib_module_names or top == "assetpipe":
                continue
            dists = {d.lower().replace("_", "-") for d in providers.get(top, [top])}
            if not dists & declared:
                undeclared.add(f"{top} ({', '.join(sorted(dists))})")
    assert sorted(undeclared) == []


def test_every_package_of_the_tree_is_installed() -> None:
    """Each folder with an ``__init__.py`` under the mapped roots is a package ``pyproject.toml`` installs:
    one left out is missing from a wheel (and an editable install elsewhere on the path can hide it)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join((PACKAGES[folder], *init.parent.relative_to(ROOT / folder).parts))
        for folder in PACKAGES
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert sorted(found - listed) == []
