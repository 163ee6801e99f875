"""The SDK in a user's project that has its own ``schemas.py``, ``producers.py`` and ``consumers.py`` (the
usual names in a service), installed as a developer installs it (editable) and as a user does (a built
wheel): everything of assetpipe lives under ``assetpipe.*``, so the project's modules never shadow it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from collections.abc import Callable
from pathlib import Path

import pytest

from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import cli_env, count_rows, running_worker, wait_until

ROOT = Path(__file__).resolve().parents[2]
SERVICE = """
import schemas, producers, consumers
from assetpipe import Reporter, MetadataValue

assert schemas.__file__.startswith({project!r}) and schemas.OrderIn.__name__ == "OrderIn"
assert producers.NAME == "the service's producers" and consumers.NAME == "the service's consumers"
import assetpipe
print("assetpipe from", assetpipe.__file__)
with Reporter.from_env() as reporter:
    receipt = reporter.report_materialization(
        "user/orders", partition="p1", metadata={{"rows": MetadataValue.int(3)}}
    )
    receipt.result(30)
print("event", receipt.event_id)
"""


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "service"
    project.mkdir()
    (project / "schemas.py").write_text("class OrderIn:\n    pass\n")
    (project / "producers.py").write_text('NAME = "the service\'s producers"\n')
    (project / "consumers.py").write_text('NAME = "the service\'s consumers"\n')
    (project / "service.py").write_text(textwrap.dedent(SERVICE.format(project=str(project))))
    return project


@pytest.fixture(scope="module")
def wheel_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with assetpipe installed from a wheel built here (its dependencies come from
    this environment's site-packages)."""
    where = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools leaves a build/ folder beside the sources, whose stale files a later
    # build would pack
    source = where / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "dist", ".assetpipe", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(where / "dist"), str(source)],
                   check=True, capture_output=True)  # fmt: skip
    [wheel] = (where / "dist").glob("assetpipe-*.whl")
    venv.create(where / "venv", system_site_packages=True, with_pip=False)
    python = where / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    return python


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True)  # fmt: skip
    return Path(out.stdout.strip())


@pytest.mark.parametrize("install", ["editable", "wheel"])
def test_a_project_with_its_own_schemas_module_reports_an_event_that_lands(
    install: str,
    settings_factory: Callable[..., Settings],
    warehouse: Warehouse,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    python = Path(sys.executable) if install == "editable" else request.getfixturevalue("wheel_python")
    settings = settings_factory()
    project = _project(tmp_path)
    env = cli_env(settings)
    env.pop("PYTHONPATH", None)
    with running_worker(settings, warehouse):
        done = subprocess.run([str(python), "service.py"], cwd=project, env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        event = done.stdout.split("event ")[1].strip()
        sql = f"SELECT count() FROM {settings.clickhouse_database}.asset_events WHERE event_id = {{e:String}}"
        wait_until(lambda: count_rows(warehouse, sql, e=event) == 1, 60, "the event in ClickHouse")
    if install == "wheel":
        site = _site_packages(python)
        assert f"assetpipe from {site}" in done.stdout
        installed = {p.name for p in site.iterdir()}
        assert "assetpipe" in installed
        assert not {"schemas", "producers", "consumers", "definitions"} & installed
        assert (site / "assetpipe" / "schemas" / "avro").is_dir()
        assert (site / "assetpipe" / "consumers" / "migrations" / "0001_asset_events.sql").is_file()
    else:
        assert f"assetpipe from {ROOT / 'assetpipe'}" in done.stdout
        assert sysconfig.get_paths()["purelib"]
