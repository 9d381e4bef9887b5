"""The first code of a test run's own process: limits, no new privileges, Landlock, no capabilities, then pytest.

The worker passes this file's text to ``python -c`` with a JSON plan (see ``sandbox.py``) and pytest's
arguments. Standard library only, and nothing from the app: once Landlock applies, the app's code and
DATA_DIR are out of reach. If a step of the plan fails the process exits with ``SANDBOX_FAILED`` before any
test code runs, so that a run never goes on with less confinement than its page says.
"""
import ctypes
import json
import os
import resource
import runpy
import stat
import sys

SANDBOX_FAILED = 97

# Linux system calls (the same numbers on every architecture: they came after the tables were unified)
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_RULE_PATH_BENEATH = 1
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Landlock filesystem rights by ABI: 13 in ABI 1, then REFER (2), TRUNCATE (3), IOCTL_DEV (5)
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
ACCESS = {"ro": EXECUTE | READ_FILE | READ_DIR, "dev": READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV, "rw": -1}


def handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1
    rights |= REFER if abi >= 2 else 0
    rights |= TRUNCATE if abi >= 3 else 0
    return rights | (IOCTL_DEV if abi >= 5 else 0)


FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # what a rule on a file (not a directory) may grant


class RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


libc = ctypes.CDLL(None, use_errno=True)


def fail(step: str, errno: int | None = None) -> None:
    errno = ctypes.get_errno() if errno is None else errno
    sys.stderr.write(f"sandbox: {step} failed: {os.strerror(errno)} - no test code was run\n")
    sys.stderr.flush()
    os._exit(SANDBOX_FAILED)


def set_limits(cpu_seconds: int) -> None:
    gib = 1024 ** 3
    resource.setrlimit(resource.RLIMIT_AS, (gib, gib))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024 ** 2, 512 * 1024 ** 2))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def no_new_privileges() -> None:
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        fail("PR_SET_NO_NEW_PRIVS")


def landlock(abi: int, rules: list) -> None:
    """Allow only ``rules`` ([path, "ro"|"rw"|"dev"]) on the filesystem; scope signals and abstract sockets."""
    fs = handled_fs(abi)
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    attr = RulesetAttr(fs, 0, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        fail("landlock_create_ruleset")
    for path, access in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # not on this machine (e.g. /lib64): nothing to allow
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        rule = PathBeneathAttr(ACCESS[access] & fs & (-1 if is_dir else FILE_RIGHTS), fd)
        if libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            fail(f"landlock_add_rule({path})")
        os.close(fd)
    if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
        fail("landlock_restrict_self")
    os.close(ruleset)


def become(uid: int, gid: int) -> None:
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        fail(f"dropping to uid {uid}", exc.errno)


def drop_capabilities() -> None:
    """Empty the bounding and ambient sets (nothing regained on exec), then every set of this process."""
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: fine
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if libc.capset(ctypes.byref(CapHeader(LINUX_CAPABILITY_VERSION_3, 0)), (CapData * 2)()) != 0:
        fail("capset")


def main(argv: list) -> None:
    plan, args = json.loads(argv[1]), argv[2:]
    set_limits(plan["cpu_seconds"])
    if plan.get("no_new_privs"):
        no_new_privileges()
    if plan.get("landlock_abi"):
        landlock(plan["landlock_abi"], plan["rules"])
    if plan.get("uid") is not None:
        become(plan["uid"], plan["gid"])
    if plan.get("drop_capabilities"):
        drop_capabilities()
    os.closerange(3, 1 << 16)  # no descriptor of the worker's reaches test code
    module = plan.get("module", "pytest")  # another module only in the sandbox's own tests
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv)
