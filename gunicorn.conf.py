"""Gunicorn's settings for Cutover's web server, the one file for every way it runs.

Read by ``make run`` (webapp/allinone starts ``gunicorn -c gunicorn.conf.py --bind 127.0.0.1:PORT wsgi:app``:
the address is given per run on the command line, which wins over this file) and by production
(``cutover web``, e.g. from deploy/cutover-web.service). Check it with
``gunicorn --check-config -c gunicorn.conf.py wsgi:app``.
"""
import os

wsgi_app = "wsgi:app"  # wsgi.py beside this file: create_app() from the environment

# Production listens here (WEB_BIND, default 127.0.0.1:8000: behind a reverse proxy); `make run` gives --bind.
bind = [os.environ.get("WEB_BIND") or "127.0.0.1:8000"]

# Threaded workers: each page or API call mostly waits on the database or Redis.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
threads = int(os.environ.get("WEB_THREADS") or 8)

# Live pages poll; a stop (Ctrl-C, systemctl stop) should not wait for long requests.
graceful_timeout = 5

accesslog = "-"  # to stdout: the terminal of `make run`, the journal under systemd
errorlog = "-"

# No ~/.gunicorn/gunicorn.ctl shared by every gunicorn of the account (and none needed: systemd or the
# all-in-one supervisor manages the process).
control_socket_disable = True
