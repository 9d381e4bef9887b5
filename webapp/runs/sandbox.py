"""What a test run's code may touch: the sandbox plan a worker applies to every pytest it starts.

Two layers, each probed once per worker process, then applied per run:

* **Landlock** (in ``sandbox_boot.py``, inside the run's process, just before pytest): the filesystem is
  reduced to the interpreter, its packages, the system's libraries and ``/etc`` read-only (never DATA_DIR nor
  ``/etc``'s secrets), ``/dev/null`` and friends, and the run's own directory read-write. From ABI 6 on,
  signals and abstract unix sockets are scoped to the run too. The best ABI the kernel offers is used.
* **Namespaces** (util-linux ``unshare``): a PID namespace with its own ``/proc`` (no other process can be
  seen, signalled or read; everything the run starts dies with it), plus IPC and mount namespaces; as
  non-root through a user namespace (``--map-root-user``).

Always: no new privileges, every capability dropped, no inherited descriptor, resource limits; a root worker
drops the run to ``nobody`` where that account can reach the interpreter and the run directory.

``SANDBOX``: ``auto`` starts runs with what there is and says what is missing; ``strict`` ends a run in error
unless both layers apply; ``off`` runs test code unconfined (and says so on every run).
"""
from __future__ import annotations

import ctypes
import functools
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from .sandbox_boot import SANDBOX_FAILED  # noqa: F401  (re-exported for the executor)

MODES = ("auto", "strict", "off")
BOOT = (Path(__file__).with_name("sandbox_boot.py")).read_text()

# never readable by a run, even inside an allowed tree
ETC_SECRETS = ("shadow", "shadow-", "gshadow", "gshadow-", "ssh", "ssl/private", "sudoers", "sudoers.d",
               "security/opasswd")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
NOBODY = "nobody"


class SandboxUnavailable(Exception):
    """The sandbox the settings ask for cannot be had on this worker; the message says why."""


@dataclass(frozen=True)
class Probe:
    """What this worker's kernel and account offer (found once per process)."""

    landlock_abi: int
    landlock_missing: str | None  # why there is no Landlock
    namespace_prefix: tuple[str, ...] | None
    namespace_missing: str | None
    root: bool  # the worker runs as root in the initial user namespace


@dataclass(frozen=True)
class Plan:
    mode: str    # "landlock+pidns", "landlock", "pidns" or "off"
    detail: str  # what is confined and what is not, in words, shown on the run
    prefix: list[str] = field(default_factory=list)  # the namespace launcher before the interpreter
    boot: dict = field(default_factory=dict)          # the JSON plan for sandbox_boot

    def command(self, pytest_args: list[str]) -> list[str]:
        return [*self.prefix, sys.executable, "-c", BOOT, json.dumps(self.boot), *pytest_args]


# ---- probing ---------------------------------------------------------------------------------------

def landlock_abi() -> tuple[int, str | None]:
    """The kernel's Landlock ABI version (0 with the reason when there is none)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        abi = libc.syscall(444, None, ctypes.c_size_t(0), 1)  # LANDLOCK_CREATE_RULESET_VERSION
    except (OSError, AttributeError) as exc:
        return 0, f"no Landlock ({exc})"
    if abi < 1:
        errno = ctypes.get_errno()
        why = {38: "the kernel has no Landlock (before 5.13)", 95: "Landlock is disabled (add landlock to lsm=)"}
        return 0, why.get(errno, f"Landlock unavailable: {os.strerror(errno)}")
    return abi, None


def namespace_prefix(root: bool) -> tuple[tuple[str, ...] | None, str | None]:
    """The ``unshare`` command line giving a run its own PID, IPC and mount namespace, if it works here."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "no PID namespace: util-linux unshare is not installed"
    prefix = (unshare, *(() if root else ("--user", "--map-root-user")),
              "--pid", "--fork", "--mount-proc", "--ipc", "--kill-child")
    try:
        tried = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"no PID namespace: {exc}"
    if tried.returncode != 0:
        why = (tried.stderr.strip().splitlines() or [f"exit code {tried.returncode}"])[-1]
        hint = "" if root else " (this distribution may forbid unprivileged user namespaces)"
        return None, f"no PID namespace: {why}{hint}"
    return prefix, None


@functools.cache
def probe() -> Probe:
    abi, landlock_missing = landlock_abi()
    root = os.geteuid() == 0
    prefix, namespace_missing = namespace_prefix(root)
    return Probe(abi, landlock_missing, prefix, namespace_missing, root)


# ---- the filesystem a run may read ---------------------------------------------------------------

def within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def allow_except(root: str, excluded: list[str]) -> list[str]:
    """``root`` itself, or, when an excluded path lies inside it, each of its entries but that one (recursively)."""
    if any(within(root, e) for e in excluded):
        return []
    inside = [e for e in excluded if within(e, root)]
    if not inside:
        return [root]
    allowed: list[str] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        real = os.path.realpath(entry.path)
        if any(within(real, e) for e in inside):
            continue  # a link to what is excluded
        allowed += allow_except(entry.path, inside)
    return allowed


def interpreter_paths() -> list[str]:
    """The interpreter, its standard library and packages, and the system's programs and libraries."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(sys.executable),
             *(p for p in sysconfig.get_paths().values()), "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"}
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)})
    return [p for p in real if not any(p != q and within(p, q) for q in real)]  # outermost only


@functools.cache
def read_only_rules(data_dir: str) -> tuple[tuple[str, str], ...]:
    excluded = [os.path.realpath(data_dir), *(f"/etc/{name}" for name in ETC_SECRETS)]
    rules = [(p, "ro") for root in [*interpreter_paths(), "/etc"] for p in allow_except(root, excluded)]
    return tuple(rules) + tuple((d, "dev") for d in DEVICES)


# ---- the unprivileged account ---------------------------------------------------------------------

def reachable_by_others(path: str) -> bool:
    """Whether an account that owns nothing on the way can reach ``path`` (search every directory, read it)."""
    path = os.path.realpath(path)
    parts = Path(path).parents
    try:
        if any(not os.stat(p).st_mode & 0o001 for p in parts):
            return False
        mode = os.stat(path).st_mode
        return bool(mode & (0o001 if stat.S_ISDIR(mode) else 0o005))
    except OSError:
        return False


def unprivileged_account(run_dir: Path) -> tuple[tuple[int, int] | None, str]:
    """(uid, gid) of ``nobody`` when a root worker can drop the run to it, else None, with the reason."""
    try:
        nobody = pwd.getpwnam(NOBODY)
    except KeyError:
        return None, "uid 0 kept (no account nobody), every capability dropped"
    for what, path in (("the interpreter", sys.executable), ("its packages", sysconfig.get_paths()["purelib"]),
                       ("the run directory's parent", str(run_dir.parent))):
        if not reachable_by_others(path):
            return None, (f"uid 0 kept, every capability dropped: nobody cannot reach {what} "
                          f"({os.path.realpath(path)})")
    return (nobody.pw_uid, nobody.pw_gid), "runs as nobody"


# ---- the plan -------------------------------------------------------------------------------------

def plan(setting: str, data_dir: str, run_dir: Path, cpu_seconds: int) -> Plan:
    """The sandbox for one run, by the ``SANDBOX`` setting and what this worker offers."""
    boot = {"cpu_seconds": cpu_seconds}
    if setting == "off":
        return Plan("off", "SANDBOX=off: test code runs unconfined, with every right of the worker "
                           "(it can read DATA_DIR's keys and database)", boot=boot)
    found = probe()
    missing = [why for why in (found.landlock_missing, found.namespace_missing) if why]
    if found.landlock_abi == 0 and found.namespace_prefix is None:
        raise SandboxUnavailable("; ".join(missing))
    if setting == "strict" and missing:
        raise SandboxUnavailable(f"SANDBOX=strict and {'; '.join(missing)}")
    parts, rules = [], []
    if found.landlock_abi:
        rules = [*read_only_rules(data_dir), (str(run_dir), "rw")]
        if found.namespace_prefix:
            rules.append(("/proc", "ro"))  # the run's own /proc: it shows only the run's processes
        scope = ", signals and abstract unix sockets scoped to the run" if found.landlock_abi >= 6 else ""
        parts.append(f"Landlock ABI {found.landlock_abi}: read-only interpreter, packages, system libraries and "
                     f"/etc (not its secrets), read-write only the run directory, no DATA_DIR{scope}")
    if found.namespace_prefix:
        parts.append("own PID, IPC and mount namespaces with their own /proc (no other process visible; "
                     "everything the run starts ends with it)")
    parts.append("no new privileges")
    account, account_note = (None, "") if not found.root else unprivileged_account(run_dir)
    if found.root:
        parts.append(account_note)
    elif found.namespace_prefix:
        parts.append("your own uid (root only inside its user namespace), every capability dropped")
    if account:
        boot.update(uid=account[0], gid=account[1])
        chown_tree(run_dir, *account)
    boot.update(no_new_privs=True, drop_capabilities=True, landlock_abi=found.landlock_abi, rules=rules)
    mode = "+".join(name for name, on in (("landlock", found.landlock_abi), ("pidns", found.namespace_prefix)) if on)
    detail = "; ".join(parts) + (f". Missing: {'; '.join(missing)}" if missing else "")
    return Plan(mode, detail, list(found.namespace_prefix or ()), boot)


def chown_tree(top: Path, uid: int, gid: int) -> None:
    for directory, dirs, files in os.walk(top):
        os.chown(directory, uid, gid)
        for name in files:
            os.chown(os.path.join(directory, name), uid, gid)
