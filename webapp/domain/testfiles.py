"""Uploaded test files: which names, directories and contents are accepted.

An upload is one pytest module (``test_*.py`` or ``*_test.py``) of at most 1 MiB of valid UTF-8 Python,
placed in a directory of its own with a plain name. Nothing that would change how pytest runs
(``conftest.py``, config files) and nothing that could point outside that directory is accepted.
"""
from __future__ import annotations

import re
import warnings
from fnmatch import fnmatchcase
from typing import Any

from .errors import UploadTooLarge, ValidationError
from .units import size_text

DIRECTORY_NAME = re.compile(r"^[a-z0-9_-]{1,40}$")
MAX_UPLOAD_BYTES = 1024 * 1024
MAX_FILENAME = 100

_FILE_CHARACTERS = re.compile(r"[A-Za-z0-9_.-]+")
_CONFIG_SUFFIXES = (".ini", ".cfg", ".toml")




def check_directory(name: Any) -> str:
    """The directory an upload goes into: a–z, 0–9, _ and -, 1 to 40 characters."""
    if not isinstance(name, str) or not DIRECTORY_NAME.fullmatch(name):
        raise ValidationError.single("directory", "Directory names use a–z, 0–9, _ and -, at most 40 characters.")
    return name


def _filename_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "Choose a file: the file name is empty."
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "Absolute paths are not allowed: give a bare file name such as test_login.py."
    if ".." in name:
        return "A file name may not contain '..'."
    if "/" in name or "\\" in name:
        return "A file name may not contain path separators (/ or \\): choose the directory separately."
    if name.lower() == "conftest.py":
        return "conftest.py cannot be uploaded: it would change how every test of a run behaves."
    if name.lower().endswith(_CONFIG_SUFFIXES):
        return "Config files (.ini, .cfg, .toml) cannot be uploaded: only test modules."
    if len(name) > MAX_FILENAME:
        return f"A file name may be at most {MAX_FILENAME} characters."
    if not _FILE_CHARACTERS.fullmatch(name):
        bad = sorted({c for c in name if not _FILE_CHARACTERS.fullmatch(c)})
        shown = " ".join(repr(c) for c in bad)
        return f"A file name may only use A–Z, a–z, 0–9, _, . and - (not {shown})."
    if not (fnmatchcase(name, "test_*.py") or fnmatchcase(name, "*_test.py")):
        return "Test files are named test_*.py or *_test.py, so that pytest collects them."
    if name.count(".") > 1:
        return "Only the .py may have a dot: pytest cannot import a module named like test_a.b.py."
    return None


def check_filename(name: Any) -> str:
    """A bare pytest module name, e.g. ``test_login.py`` or ``login_test.py``; one reason when refused."""
    problem = _filename_problem(name)
    if problem:
        raise ValidationError.single("file", problem)
    return name


def check_content(data: Any, limit: int = MAX_UPLOAD_BYTES) -> str:
    """The file's text: at most ``limit`` bytes (else ``UploadTooLarge``) of UTF-8 that compiles as Python.

    The code is compiled, never run. A UTF-8 byte order mark is dropped.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValidationError.single("file", "Choose a file: no content was sent.")
    data = bytes(data)
    if len(data) > limit:
        raise UploadTooLarge(f"The file is larger than {size_text(limit)}.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError.single(
            "file", f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read): save it as UTF-8."
        ) from None
    if "\0" in text:  # Python 3.11 says so as a SyntaxError or a ValueError, depending on the API
        raise ValidationError.single("file", "Not valid Python: the file contains null bytes.")
    try:
        with warnings.catch_warnings():  # SyntaxWarnings (e.g. invalid escapes) are the test author's business
            warnings.simplefilter("ignore")
            compile(text, "<upload>", "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError and TabError too
        first, _, rest = (exc.msg or "invalid syntax").partition(". ")  # "invalid syntax. Perhaps you forgot a comma?"
        where = f" on line {exc.lineno}" if exc.lineno else ""
        message = f"Not valid Python: {first.rstrip('.')}{where}." + (f" {rest}" if rest else "")
        raise ValidationError.single("file", message) from None
    except ValueError as exc:  # e.g. a number literal too long to convert
        raise ValidationError.single("file", f"Not valid Python: {exc}.") from None
    except (RecursionError, MemoryError):
        raise ValidationError.single("file", "Not valid Python: the code is nested too deeply to compile.") from None
    return text


def check_upload(filename: Any, directory: Any, data: Any) -> tuple[str, str, str]:
    """``(filename, directory, text)`` of an acceptable upload.

    A file over the limit is refused first (``UploadTooLarge``), then the name and directory together,
    then the content.
    """
    if isinstance(data, (bytes, bytearray, memoryview)) and len(data) > MAX_UPLOAD_BYTES:
        raise UploadTooLarge(f"The file is larger than {size_text(MAX_UPLOAD_BYTES)}.")
    errors: dict[str, list[str]] = {}
    for check, value in ((check_filename, filename), (check_directory, directory)):
        try:
            check(value)
        except ValidationError as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationError(errors)
    return filename, directory, check_content(data)
