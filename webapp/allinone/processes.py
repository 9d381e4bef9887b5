"""Linux process helpers of the all-in-one supervisor: the children it starts and how it stops them.

Each ``Child`` runs in its own process group and gets SIGTERM from the kernel if the supervisor
dies (PR_SET_PDEATHSIG). The supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER), so what the
children start stays its descendant and is found in /proc: ``stop_children`` stops that too.
"""
from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, NamedTuple

from webapp.allinone.common import log

STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl() -> Callable[..., int] | None:
    """libc's prctl(), or None where there is none (not Linux)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGTERM the child if this supervisor dies."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def become_subreaper() -> None:
    """Adopt our orphaned descendants instead of init, so that they can be found and stopped."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class ProcInfo(NamedTuple):
    ppid: int
    pgid: int
    state: str  # "Z" for a zombie


def process_table() -> dict[int, ProcInfo]:
    """Parent, process group and state of every process, read from /proc (empty elsewhere)."""
    table: dict[int, ProcInfo] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue  # it just ended
        fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
        table[int(entry)] = ProcInfo(int(fields[1]), int(fields[2]), fields[0])
    return table


def descendants(root: int, table: dict[int, ProcInfo]) -> set[int]:
    """Every process below ``root`` in ``table``."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, info in table.items():
        children[info.ppid].append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children[stack.pop()]:
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _kill(pid: int, signum: int, group: bool = False) -> None:
    """Send a signal to a process (or its process group), ignoring ones that have ended."""
    try:
        (os.killpg if group else os.kill)(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class Child:
    """One supervised process, started in its own process group (session)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.pass_fds = pass_fds  # inherited by every start (the secrets memfd)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start (or restart) the process."""
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, pass_fds=self.pass_fds,
            start_new_session=True, preexec_fn=_die_with_parent(),
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def exit_code(self) -> int | None:
        """The exit code if the process has ended (and reaps it), else None."""
        return self.proc.poll() if self.proc else None


def reap_adopted(managed: list[Child]) -> None:
    """Reap orphans that we adopted as subreaper and that have ended (not the ``managed`` Popen ones)."""
    pids = {c.pid for c in managed}
    me = os.getpid()
    for pid, info in process_table().items():
        if info.ppid == me and info.state == "Z" and pid not in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def running_descendants(managed: list[Child], spare: Child | None = None) -> set[int]:
    """Our living descendants, leaving out ``spare`` and what it started (``managed``: all our children)."""
    for child in managed:
        child.exit_code()  # reap, so that an ended child does not count
    reap_adopted(managed)
    table = process_table()
    pids = descendants(os.getpid(), table)
    if spare is not None and spare.pid is not None:
        pids -= {spare.pid} | descendants(spare.pid, table)
    return {pid for pid in pids if table[pid].state != "Z"}


def stop_children(children: list[Child], spare: Child | None, managed: list[Child],
                  forced: Callable[[], bool]) -> None:
    """SIGTERM the children's process groups and every other descendant (except ``spare``'s),
    wait up to STOP_TIMEOUT for all of them to end (less if ``forced()``), then SIGKILL the rest.
    ``managed``: all our children (``spare`` included)."""
    groups = {c.pid for c in children if c.pid is not None}
    for child in children:
        if child.exit_code() is None:
            log(f"stopping {child.name} (pid {child.pid})")
        _kill(child.pid, signal.SIGTERM, group=True)
    table = process_table()
    for pid in running_descendants(managed, spare):
        if pid in table and table[pid].pgid not in groups:  # e.g. an RQ work horse
            _kill(pid, signal.SIGTERM)

    def still_running() -> set[int]:
        alive = running_descendants(managed, spare)
        alive |= {c.pid for c in children if c.exit_code() is None}
        return alive

    deadline = time.monotonic() + STOP_TIMEOUT
    while still_running() and time.monotonic() < deadline and not forced():
        time.sleep(0.05)
    left = still_running()
    if left:
        log(f"killing {len(left)} process(es) that did not stop in time: {sorted(left)}")
        for pid in groups:
            _kill(pid, signal.SIGKILL, group=True)
        for pid in left:
            _kill(pid, signal.SIGKILL)
        for child in children:
            if child.proc is not None:
                try:
                    child.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
        reap_adopted(managed)
