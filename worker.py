"""Start one RQ worker: ``python worker.py [--burst]``. Wiring only: config → connection → worker."""
import sys

from webapp import create_app
from webapp.workers import start_worker

if __name__ == "__main__":
    start_worker(create_app(), burst="--burst" in sys.argv[1:])
