"""An environment's variables and secrets (issue 14), in plain Python: names, values, how many, and which
names the app keeps for itself. Variables are shown to everyone; secrets are write-only."""
from __future__ import annotations

import re
from typing import Any, Mapping

from .errors import ValidationError

NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
MAX_VALUE_BYTES, MAX_ITEMS = 4096, 50
# Names the app sets itself or that change how the test process starts: refused for variables and secrets.
RESERVED = frozenset({"PATH", "HOME", "TMPDIR", "TMP", "TEMP", "LANG", "LANGUAGE", "SHELL", "USER", "LOGNAME",
                      "PWD", "OLDPWD", "IFS", "ENV", "BASH_ENV", "TZ", "TERM", "SSL_CERT_FILE", "SSL_CERT_DIR",
                      "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                      "ALL_PROXY"})
RESERVED_PREFIXES = ("CUTOVER_", "PYTHON", "PYTEST_", "LD_", "LC_", "BASH_FUNC_", "GCONV_", "MALLOC_")
RESERVED_TEXT = "PATH, HOME, TMPDIR, LANG, LC_*, PYTHON*, PYTEST_*, CUTOVER_*, LD_* and other process settings"


def check_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValidationError.single(field, "A name is an upper-case letter or '_', then up to 63 upper-case "
                                            "letters, digits or '_' (like BASE_URL).")
    if value in RESERVED or value.startswith(RESERVED_PREFIXES):
        raise ValidationError.single(field, f"{value} is reserved by Cutover ({RESERVED_TEXT}): choose "
                                            "another name.")
    return value


def check_value(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError.single(field, "A value is text.")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise ValidationError.single(field, f"A value is at most {MAX_VALUE_BYTES} bytes.")
    if "\x00" in value:
        raise ValidationError.single(field, "A value cannot hold a NUL character.")
    return value


def merged(current: Mapping[str, str], changes: Any, field: str, *, deletable: bool) -> dict[str, str]:
    """``current`` with ``changes`` applied: each name → a new value, or (``deletable``) None to remove it.
    Names not sent stay. Every bad entry is reported at once, keyed ``field.NAME``."""
    if not isinstance(changes, Mapping):
        raise ValidationError.single(field, f"{field.capitalize()} must be an object of NAME: value.")
    result, errors = dict(current), {}
    for name, value in changes.items():
        try:
            check_name(name, f"{field}.{name}")
            if value is None and deletable:
                result.pop(name, None)
            else:
                result[name] = check_value(value, f"{field}.{name}")
        except ValidationError as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationError(errors)
    if len(result) > MAX_ITEMS:
        raise ValidationError.single(field, f"An environment has at most {MAX_ITEMS} {field}.")
    return result
