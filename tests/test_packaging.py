"""The project as installed and deployed: pyproject.toml, the ``cutover`` command, gunicorn.conf.py, deploy/.

``cutover`` is run as the venv's console script when ``make install`` put it there, else as
``python -m webapp.cli``; every command gets a fresh SQLite DATA_DIR and none of the test run's settings."""
from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from webapp.config import SECRET_SETTINGS
from webapp.db import head_revision
from webapp.version import VERSION

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# Settings that would point a command at something other than its own DATA_DIR.
_DROPPED_ENV = ("DATA_DIR", "DATABASE_URL", "TEST_DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CREDENTIALS_KEY",
                "CUTOVER_SECRETS_FD", "ADMIN_PASSWORD", "WEB_BIND", "WEB_CONCURRENCY", "WEB_THREADS")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env["DATA_DIR"] = str(data_dir)
    return env


def _cutover() -> list[str]:
    script = Path(sys.executable).with_name("cutover")
    return [str(script)] if script.exists() else [sys.executable, "-m", "webapp.cli"]


def _run(argv: list[str], data_dir: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=_env(data_dir), capture_output=True, text=True, timeout=60)


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


# ---- pyproject.toml -------------------------------------------------------------------------------

def test_pyproject_names_the_cutover_command_and_reads_the_version_from_webapp():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == "cutover"
    assert project["project"]["scripts"] == {"cutover": "webapp.cli:main"}
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "webapp.version.VERSION"}
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"


def test_pyproject_dependencies_are_requirements_txt_as_lower_bounds_with_the_test_tools_apart():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement, version = line.split("==")
            pins[_name(requirement)] = (requirement, version)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, test = project["dependencies"], project["optional-dependencies"]["test"]
    listed = [*runtime, *test]
    assert sorted(_name(r) for r in listed) == sorted(pins), "pyproject.toml and requirements.txt name other packages"
    for requirement in listed:
        pinned, version = pins[_name(requirement)]
        assert requirement == f"{pinned}>={version}", requirement
    # A worker runs every test run with its own interpreter's pytest: a runtime dependency. The rest is for make test.
    assert "pytest" in {_name(r) for r in runtime}
    assert not {_name(r) for r in runtime} & {"playwright", "schemathesis", "pytest-xdist"}


# ---- the cutover command --------------------------------------------------------------------------

def test_cutover_help_lists_every_subcommand(tmp_path):
    result = _run([*_cutover(), "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    commands = re.findall(r"^  (\S+)\s", result.stdout.split("Commands:")[1], re.M)
    assert commands == ["all-in-one", "backup", "db", "restore", "rotate-credentials", "users", "web", "worker"], \
        result.stdout
    assert not list(tmp_path.iterdir()), "--help must not create the app (nor DATA_DIR's files)"
    db = _run([*_cutover(), "db", "--help"], tmp_path)
    assert {"upgrade", "current"} <= set(re.findall(r"^  (\S+)\s", db.stdout, re.M)), db.stdout
    users = _run([*_cutover(), "users", "--help"], tmp_path)
    assert {"create", "list", "set-role", "disable", "token"} <= set(re.findall(r"^  (\S+)\s", users.stdout, re.M))
    version = _run([*_cutover(), "--version"], tmp_path)
    assert version.stdout.strip() == f"cutover, version {VERSION}"


def test_cutover_db_upgrade_and_current_on_a_fresh_sqlite_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    upgrade = _run([*_cutover(), "db", "upgrade"], data_dir)
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.strip().splitlines()[-1] == f"Database at {head_revision()}."
    assert (data_dir / "cutover.db").exists()
    current = _run([*_cutover(), "db", "current"], data_dir)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == head_revision()


def test_cutover_users_are_the_flask_users_commands(tmp_path):
    created = subprocess.run([*_cutover(), "users", "create", "alice", "--role", "operator", "--password-stdin"],
                             cwd=ROOT, env=_env(tmp_path), input="alice-Pa55word!\n", capture_output=True,
                             text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "Created alice (operator)."
    listed = _run([*_cutover(), "users", "list"], tmp_path)
    assert re.search(r"^alice\toperator\tactive", listed.stdout, re.M), listed.stdout


def test_a_relative_data_dir_is_the_callers_directory(tmp_path):
    env = {**_env(tmp_path), "DATA_DIR": "rel-data", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([*_cutover(), "db", "current"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rel-data" / "cutover.db").exists()


# ---- gunicorn.conf.py -----------------------------------------------------------------------------

def test_gunicorn_conf_is_valid_and_loads_the_app(tmp_path):
    result = _run([sys.executable, "-m", "gunicorn", "--check-config", "-c", "gunicorn.conf.py", "wsgi:app"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cutover.db").exists()  # it did load wsgi:app


def test_gunicorn_conf_settings_and_make_run_gives_only_the_address(tmp_path):
    result = _run([sys.executable, "-m", "gunicorn", "--print-config", "-c", "gunicorn.conf.py",
                   "--bind", "127.0.0.1:5999", "wsgi:app"], tmp_path)
    assert result.returncode == 0, result.stderr
    config = dict(re.findall(r"^(\w+)\s+= (.*)$", result.stdout, re.M))
    assert config["bind"] == "['127.0.0.1:5999']"  # the command line wins over WEB_BIND
    assert (config["workers"], config["threads"], config["control_socket_disable"]) == ("2", "8", "True")
    assert config["wsgi_app"] == "wsgi:app" and config["accesslog"] == "-"
    supervisor = (ROOT / "webapp" / "allinone" / "supervisor.py").read_text()
    assert '"-c", str(REPO_ROOT / "gunicorn.conf.py")' in supervisor


# ---- deploy/ --------------------------------------------------------------------------------------

def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text())
    return parser


@pytest.mark.parametrize("name, command", [("cutover-web.service", "cutover web"),
                                           ("cutover-worker@.service", "cutover worker")])
def test_systemd_units_parse_and_keep_their_processes_in_hand(name, command):
    unit = _unit(name)
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["ExecStart"].endswith(command)
    assert service["KillMode"] == "control-group"  # a stopped worker takes its running pytest with it
    assert service["StateDirectory"] == "cutover" and service["StateDirectoryMode"] == "0700"
    assert service["EnvironmentFile"] == "/etc/cutover/cutover.env"
    assert service["User"] == "cutover"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze on this machine")
def test_systemd_analyze_verify_finds_nothing_but_the_missing_install():
    units = [DEPLOY / "cutover-web.service", DEPLOY / "cutover-worker@.service"]
    result = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True,
                            timeout=60)
    # Here /opt/cutover (the checkout the units name) does not exist: that, and only that, may be reported.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "/opt/cutover/.venv/bin/cutover is not executable" not in line]
    assert not complaints, complaints


def test_env_example_sets_or_mentions_every_setting_of_the_readme_with_a_comment():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration")[1].split("\n## ")[0]
    settings = re.findall(r"^\| `([A-Z_]+)` \|", table, re.M)
    assert {"DATA_DIR", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CREDENTIALS_KEY", "WEB_BIND"} <= set(settings)
    lines = (DEPLOY / "cutover.env.example").read_text().splitlines()
    assignments = {re.match(r"#?([A-Z_]+)=", line).group(1): i for i, line in enumerate(lines)
                   if re.match(r"#?[A-Z_]+=", line)}
    assert sorted(assignments) == sorted(settings)
    for name, index in assignments.items():
        assert lines[index - 1].startswith("# "), f"{name} has no comment above it"
    for name in SECRET_SETTINGS:  # a secret is a placeholder, never a value that would work
        line = lines[assignments[name]]
        assert line.startswith("#") or "CHANGE-ME" in line, line
