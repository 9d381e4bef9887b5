"""One place that decides between the whole page and the fragment an htmx request asked for."""
from __future__ import annotations

from flask import Response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def page_or_fragment(full: str, fragment: str, /, **context) -> str:
    """The full page includes the fragment, so both paths render identical markup."""
    return render_template(fragment if is_htmx() else full, **context)


def download(body: str, mimetype: str, filename: str) -> Response:
    """A text file to save (a run's log, its JUnit report), for the pages and the API alike."""
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def add_vary(response: Response) -> Response:
    response.vary.add("HX-Request")
    return response
