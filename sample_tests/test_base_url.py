"""Test code reads its environment's variables from the process environment (issue 14). ``BASE_URL`` is where
the service under test answers; when the environment does not set it, this file's own stub (standard library,
127.0.0.1, a free port) stands in, so the file passes on every environment. Secrets arrive the same way
(``os.environ["NAME"]``) and are masked as ``[masked]`` wherever the run's output is kept."""
import json
import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok"} if self.path == "/health" else {"error": "not found"}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the run's log for the tests' own output
        pass


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield os.environ.get("BASE_URL", "").rstrip("/") or f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_service_at_base_url_is_healthy(base_url):
    with urllib.request.urlopen(f"{base_url}/health", timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}


def test_the_run_knows_its_environment():
    # every run gets these, whatever its environment sets
    assert os.environ.get("CUTOVER_RUN_ID", "").isdigit()
    assert os.environ.get("CUTOVER_ENVIRONMENT_ID", "").isdigit()
    assert os.environ.get("CUTOVER_ENVIRONMENT_NAME")
