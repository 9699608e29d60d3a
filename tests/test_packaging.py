"""A plain `pip install .` (a built wheel, not the repository) finds the SQL it needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ledger.db.migrations import discover
from ledger.db.queries import all_queries
from ledger.ops import list_queries

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(target)]
    subprocess.run([*build, str(REPO)], check=True, capture_output=True, timeout=300)
    (built,) = target.glob("*.whl")
    return built


def test_a_built_wheel_carries_the_migrations_the_ops_queries_and_the_pages(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())

    assert {f"ledger/sql/migrations/{m.path.name}" for m in discover()} <= names
    assert {f"ledger/sql/queries/{name}.sql" for name in all_queries()} <= names
    assert {f"ledger/ops_queries/{q.path.name}" for q in list_queries()} <= names
    assert "ledger/cli/__init__.py" in names and "api/app.py" in names
    assert web_files() <= names
    assert "api/web/static/vendor/chartjs/LICENSE.md" in names


def web_files() -> set[str]:
    """The dashboards' templates, stylesheet, scripts and vendored Chart.js with its licence."""
    web = REPO / "api" / "web"
    return {
        path.relative_to(REPO).as_posix()
        for folder in ("templates", "static")
        for path in (web / folder).rglob("*")
        if path.is_file()
    }


def test_every_picture_the_readme_shows_is_in_the_repository():
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (REPO / "README.md").read_text(encoding="utf-8"))
    assert pictures, "the README shows the dashboards"
    assert [p for p in pictures if not (REPO / p).is_file()] == []


def test_the_installed_package_reads_its_own_copies(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    program = (
        "from ledger.db.migrations import migrations_dir; from ledger.ops import ops_dir;"
        " from ledger.db.queries import queries_dir, query;"
        " print(migrations_dir()); print(ops_dir()); print(queries_dir());"
        " print(query('account_by_user').startswith('--'))"
    )

    found = subprocess.run(
        [sys.executable, "-c", program],
        env={"PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()

    assert found == [
        str(site / "ledger" / "sql" / "migrations"),
        str(site / "ledger" / "ops_queries"),
        str(site / "ledger" / "sql" / "queries"),
        "True",
    ]


def test_the_docker_build_stage_has_everything_the_wheel_needs(tmp_path):
    """No Docker engine here: copy exactly what the Dockerfile's build stage COPYs, build there."""
    dockerfile = (REPO / "Dockerfile").read_text()
    build_stage = dockerfile.split("\nFROM ")[1]  # [comments, build stage, runtime stage]
    context = tmp_path / "context"
    context.mkdir()
    for line in build_stage.splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, destination = line.split()[1:]
        for source in sources:
            target = context / destination / Path(source).name if destination.endswith("/") else context / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(REPO / source, target)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*build, str(context)], check=True, capture_output=True, timeout=300)

    (built,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(built).namelist())
    assert {f"ledger/sql/migrations/{m.path.name}" for m in discover()} <= names
    assert {f"ledger/sql/queries/{name}.sql" for name in all_queries()} <= names
    assert {f"ledger/ops_queries/{q.path.name}" for q in list_queries()} <= names
    assert web_files() <= names


def test_scripts_serve_passes_its_arguments_to_ledger_serve_not_to_the_venv_setup(tmp_path):
    """`scripts/serve --port 8001` once reached _venv.sh as pip extras ("--port"): the venv setup
    is given no extras, and every argument goes to `ledger serve`."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy(REPO / "scripts" / "serve", scripts / "serve")
    record = tmp_path / "record"
    # stand-ins: the venv setup records what it was given; `ledger` records its arguments
    (scripts / "_venv.sh").write_text(f'printf "venv:%s|" "$@" >> {record}\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ledger").write_text(f'#!/usr/bin/env bash\nprintf "ledger:%s|" "$@" >> {record}\n')
    (bin_dir / "ledger").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    subprocess.run(["bash", str(scripts / "serve"), "--port", "8001"], check=True, env=env, timeout=30)

    assert record.read_text() == "venv:|ledger:serve|ledger:--port|ledger:8001|"


def test_the_readme_is_a_front_door_and_shows_the_permission_table_the_code_asks():
    from ledger.accounts.roles import permission_table_markdown

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 300, "the README is the front door: the manual lives in docs/"
    assert permission_table_markdown() in readme
    assert permission_table_markdown() in (REPO / "docs" / "workspaces.md").read_text(encoding="utf-8")
