"""Run all of Cutover on one machine: Redis, the RQ workers and the web server.

``make run`` executes ``python -m webapp.allinone``. Settings come from the environment:

* ``DATA_DIR`` (default ``./var``): SQLite database, secrets and the embedded Redis' data.
* ``PORT`` (default 5000): the web server listens on 127.0.0.1 only.
* ``WORKERS`` (default 2): number of RQ worker processes.
* ``REDIS_URL`` (optional): use this Redis instead of starting an embedded one. The embedded one
  requires a password, generated once into ``DATA_DIR/redis_password`` and given to redis-server in
  ``DATA_DIR/redis/redis.conf`` (both 0600), never on its command line.

No secret reaches a child's environment or command line (both are readable by every process of
the user, test code included): the secret settings (``webapp.config.SECRET_SETTINGS``: the ones
set in our environment and the embedded Redis' URL with its password) are removed from the
children's environment and handed over in an inherited memfd named by ``CUTOVER_SECRETS_FD``,
which ``webapp.config.load()`` reads; SECRET_KEY and CREDENTIALS_KEY generated into DATA_DIR are
read from there. Everything else is passed through to the child processes. Each child runs in its
own process group, so that Ctrl-C reaches only this supervisor, which then stops the children
in order (web server and workers first, Redis last).

No process is left behind: this supervisor is a Linux "child subreaper", so processes
that leave their group or lose their parent (RQ's work horses call setpgrp()) stay its
descendants and are found in /proc and stopped too. If the supervisor itself is killed
with SIGKILL, the kernel sends SIGTERM to its direct children (PR_SET_PDEATHSIG).

The modules:

* ``common``: the supervisor's log line, ``StartupError``, integer settings, the repository root.
* ``processes``: Linux process helpers (prctl, subreaper, the /proc table), ``Child`` (one
  supervised process) and stopping a set of children with everything they started.
* ``embedded_redis``: the embedded redis-server (binary, socket, 0600 config, waiting for PING)
  and ``mask_url`` for logging a user's REDIS_URL.
* ``supervisor``: ``Supervisor`` (start in order, watch, restart workers, stop) and ``main()``.
* ``__main__``: ``python -m webapp.allinone``.
"""
from webapp.allinone.common import StartupError, log
from webapp.allinone.embedded_redis import find_redis_server, mask_url, redis_config_value
from webapp.allinone.processes import Child, ProcInfo, become_subreaper, descendants, process_table
from webapp.allinone.supervisor import Supervisor, main

__all__ = [
    "Child", "ProcInfo", "StartupError", "Supervisor", "become_subreaper", "descendants",
    "find_redis_server", "log", "main", "mask_url", "process_table", "redis_config_value",
]
