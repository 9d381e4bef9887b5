"""One house: every feature is built the same way. Thin views (parse → service → render), one helper that
decides page or fragment, one CSRF field macro, live regions that stay while their content is swapped."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEBAPP, TEMPLATES = ROOT / "webapp", ROOT / "templates"
VIEW_FILES = sorted([*WEBAPP.glob("*/views.py"), *(WEBAPP / "api").rglob("*.py")])
ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "route"}
MAX_VIEW_LINES = 8
FEATURES = ("accounts", "audit", "environments", "events", "migrations", "runs", "testhistory", "waves", "workloads")


def templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def _is_route(decorator: ast.expr) -> bool:
    call = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(call, ast.Attribute) and call.attr in ROUTE_DECORATORS


def view_functions():
    for path in VIEW_FILES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and any(_is_route(d) for d in node.decorator_list):
                yield path, node


def body_lines(node: ast.FunctionDef) -> int:
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):  # the docstring
        body = body[1:]
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def test_there_are_views_to_check():
    names = {f"{p.parent.name}.{n.name}" for p, n in view_functions()}
    assert {"runs.detail", "migrations.index", "events.badge", "environments.detail", "openapi.docs"} <= names


@pytest.mark.parametrize("path, node", list(view_functions()), ids=lambda v: getattr(v, "name", None) or v.name)
def test_no_view_function_body_exceeds_eight_lines(path, node):
    assert body_lines(node) <= MAX_VIEW_LINES, \
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} has {body_lines(node)} lines: move the work into pages.py"


@pytest.mark.parametrize("feature", FEATURES)
def test_every_feature_has_views_forms_or_pages_and_services(feature):
    package = WEBAPP / feature
    assert (package / "views.py").exists() and (package / "services.py").exists() and (package / "pages.py").exists()
    services = (package / "services.py").read_text()
    imported = re.findall(r"^from flask import (.*)$", services, re.M)
    assert not {"request", "session"} & {n.strip() for line in imported for n in line.split(",")}, \
        f"{feature}/services.py reads the request or the session"
    assert "for the pages" not in services, f"{feature}/services.py still has a section for the pages"


def test_only_the_htmx_helper_reads_the_htmx_headers():
    for path in WEBAPP.rglob("*.py"):
        if path.name == "htmx.py":
            continue
        source = path.read_text()
        assert "HX-Request" not in source and "HX-Current-URL" not in source, path.relative_to(ROOT)
        if path.name == "views.py":
            assert "is_htmx" not in source and "request.headers" not in source, path.relative_to(ROOT)
    for path in templates():
        source = path.read_text()
        assert "HX-" not in source and "request.headers" not in source, path.relative_to(ROOT)


def test_no_template_hand_writes_a_csrf_token_input_outside_the_macro():
    written = {p.relative_to(TEMPLATES).as_posix(): len(re.findall(r'name=["\']csrf_token["\']', p.read_text()))
               for p in templates()}
    assert written.pop("_macros.html") == 1
    assert not {name: n for name, n in written.items() if n}, "use {{ csrf() }} from _macros.html"


def test_one_live_refresh_macro_and_no_hx_select():
    for path in templates():
        source = path.read_text()
        assert "hx-select" not in source, f"{path.name}: give the fragment its own partial"
        if path.name != "_macros.html":
            assert "Live · refresh" not in source, f"{path.name}: use live_refresh() from _macros.html"


def _tags(source: str):
    return re.findall(r"<([a-z]+)\b([^<>]*(?:\{\{.*?\}\}[^<>]*)*)>", source, re.S)


def test_every_request_attribute_sits_on_a_working_form_or_link():
    for path in templates():
        for tag, attrs in _tags(path.read_text()):
            if re.search(r"\bhx-(get|post|put|patch|delete)=", attrs):
                assert tag in ("a", "form"), f"{path.name}: <{tag} {attrs.strip()[:80]}…>"
                if tag == "a":
                    assert "href=" in attrs, f"{path.name}: a link without href"
                else:
                    assert "action=" in attrs or "hx-get=" in attrs and 'method="post"' in attrs, path.name


def test_every_live_region_is_a_stable_element_that_is_not_swapped_itself():
    targets = set()
    for path in templates():
        source = path.read_text()
        targets |= set(re.findall(r'hx-target="#([\w-]+)"[^>]*hx-swap="outerHTML"', source, re.S))
        targets |= set(re.findall(r"live_refresh\(url_for\(.*?\),\s*'([\w-]+)'", source))
    regions = 0
    for path in templates():
        for tag, attrs in _tags(path.read_text()):
            if "aria-live" in attrs:
                regions += 1
                found = re.search(r'\bid="([\w-]+)"', attrs)
                assert not (found and found.group(1) in targets), f"{path.name}: #{found.group(1)} is swapped whole"
                assert "hx-" not in attrs, f"{path.name}: the live region itself polls"
    assert regions >= 2


def test_templates_keep_their_lines_short_and_build_no_nav_or_titles():
    for path in templates():
        if path.name == "docs.html":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert len(line) <= 120, f"{path.relative_to(TEMPLATES)}:{number} has {len(line)} characters"
    base, error = (TEMPLATES / "base.html").read_text(), (TEMPLATES / "error.html").read_text()
    assert "split(" not in base and "in [(" not in base
    assert "{4" not in error and ".get(status" not in error


def test_no_inline_script_and_no_eval():
    for path in templates():
        for tag, attrs in _tags(path.read_text()):
            if tag == "script":
                assert "src=" in attrs, f"{path.name}: an inline script"
            assert not re.search(r"\bon[a-z]+=", attrs), f"{path.name}: an inline event handler"
            assert "visibilityState" not in attrs and "[document" not in attrs, f"{path.name}: a trigger filter (eval)"
    script = (ROOT / "static" / "app.js").read_text()
    assert "eval(" not in script and "new Function" not in script and "innerHTML" not in script


def test_no_module_of_the_app_is_over_300_lines():
    """Split a module that grows past this (ARCHITECTURE.md): one page of code is what a newcomer reads at once."""
    long = {str(p.relative_to(ROOT)): n for p in WEBAPP.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}
