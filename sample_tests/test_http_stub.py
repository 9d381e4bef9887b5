"""An order API stub served on 127.0.0.1 by the standard library, tested with urllib (no outside network)."""
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ORDERS = {"42": {"id": "42", "status": "shipped", "items": 3}}


class OrderApi(BaseHTTPRequestHandler):
    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self._send(200, {"status": "ok"})
        elif self.path.startswith("/orders/") and self.path[len("/orders/"):] in ORDERS:
            self._send(200, ORDERS[self.path[len("/orders/"):]])
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        try:
            order = json.loads(self.rfile.read(length))
        except ValueError:
            self._send(400, {"error": "body is not JSON"})
            return
        if not isinstance(order, dict) or not order.get("items"):
            self._send(422, {"error": "an order needs items"})
            return
        self._send(201, {"id": "43", "status": "received", "items": order["items"]})

    def log_message(self, format, *args):  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), OrderApi)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


def post(url, body: bytes):
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health(base_url):
    assert get(f"{base_url}/health") == (200, {"status": "ok"})


def test_known_order(base_url):
    status, order = get(f"{base_url}/orders/42")
    assert status == 200
    assert order["status"] == "shipped"


def test_unknown_order_is_404(base_url):
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        get(f"{base_url}/orders/999")
    assert excinfo.value.code == 404


def test_create_order(base_url):
    assert post(f"{base_url}/orders", json.dumps({"items": 2}).encode()) == (
        201, {"id": "43", "status": "received", "items": 2})


@pytest.mark.parametrize("body, status", [(b"not json", 400), (b"{}", 422), (b"[]", 422)])
def test_bad_orders_are_refused(base_url, body, status):
    assert post(f"{base_url}/orders", body)[0] == status
