"""Unit tests of the upload rules for test files: directory, file name, content and the whole upload."""
from __future__ import annotations

import pytest

from webapp.domain.errors import DomainError, ValidationError
from webapp.domain.testfiles import (
    DIRECTORY_NAME, MAX_UPLOAD_BYTES, UploadTooLarge, check_content, check_directory, check_filename, check_upload,
)

GOOD = b"def test_login():\n    assert 1 + 1 == 2\n"
DIRECTORY_MESSAGE = "Directory names use a–z, 0–9, _ and -, at most 40 characters."


def assert_invalid(excinfo, field, message):
    """The error names exactly ``field``, with a message containing ``message``."""
    assert set(excinfo.value.fields) == {field}
    assert any(message in m for m in excinfo.value.fields[field]), excinfo.value.fields


def test_constants_and_error_kinds():
    assert DIRECTORY_NAME.pattern == r"^[a-z0-9_-]{1,40}$"
    assert MAX_UPLOAD_BYTES == 1024 * 1024
    assert issubclass(UploadTooLarge, DomainError) and not issubclass(UploadTooLarge, ValidationError)


# --- directory ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["smoke", "a", "team-7_regression", "0", "x" * 40, "-", "_"])
def test_directory_accepted(name):
    assert check_directory(name) == name


@pytest.mark.parametrize("name", ["", " ", "Smoke", "x" * 41, "a b", "a/b", "..", ".", "a.b", "../etc", "a\\b",
                                  "smoke\n", "\nsmoke", "é", "smoke!", None, 7, b"smoke"])
def test_directory_refused(name):
    with pytest.raises(ValidationError) as excinfo:
        check_directory(name)
    assert excinfo.value.fields == {"directory": [DIRECTORY_MESSAGE]}


# --- file name ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["test_login.py", "login_test.py", "test_.py", "_test.py", "test_CHECKOUT-2.py",
                                  "Checkout_test.py", "test-login_test.py", "test_" + "x" * 92 + ".py"])
def test_filename_accepted(name):
    assert check_filename(name) == name


@pytest.mark.parametrize("name, message", [
    ("", "Choose a file: the file name is empty."),
    ("   ", "Choose a file: the file name is empty."),
    (None, "Choose a file: the file name is empty."),
    (42, "Choose a file: the file name is empty."),
    ("/tmp/test_x.py", "Absolute paths are not allowed"),
    ("\\test_x.py", "Absolute paths are not allowed"),
    ("C:\\tests\\test_x.py", "Absolute paths are not allowed"),
    ("c:test_x.py", "Absolute paths are not allowed"),
    ("../test_x.py", "A file name may not contain '..'."),
    ("..", "A file name may not contain '..'."),
    ("test_x..py", "A file name may not contain '..'."),
    ("smoke/test_x.py", "A file name may not contain path separators (/ or \\)"),
    ("smoke\\test_x.py", "A file name may not contain path separators (/ or \\)"),
    ("conftest.py", "conftest.py cannot be uploaded"),
    ("CONFTEST.PY", "conftest.py cannot be uploaded"),
    ("pytest.ini", "Config files (.ini, .cfg, .toml) cannot be uploaded"),
    ("tox.ini", "Config files (.ini, .cfg, .toml) cannot be uploaded"),
    ("setup.cfg", "Config files (.ini, .cfg, .toml) cannot be uploaded"),
    ("pyproject.toml", "Config files (.ini, .cfg, .toml) cannot be uploaded"),
    ("test_x.TOML", "Config files (.ini, .cfg, .toml) cannot be uploaded"),
    ("test x.py", "A file name may only use A–Z, a–z, 0–9, _, . and - (not ' ')."),
    ("test_é.py", "A file name may only use A–Z, a–z, 0–9, _, . and - (not 'é')."),
    ("test_$(id).py", "(not '$' '(' ')')"),
    ("test_x.py\n", "(not '\\n')"),
    ("test_x.py\x00", "(not '\\x00')"),
    ("test_" + "x" * 93 + ".py", "A file name may be at most 100 characters."),
    ("login.py", "Test files are named test_*.py or *_test.py"),
    ("test_login.txt", "Test files are named test_*.py or *_test.py"),
    ("test_login.PY", "Test files are named test_*.py or *_test.py"),
    ("Test_login.py", "Test files are named test_*.py or *_test.py"),
    ("tests.py", "Test files are named test_*.py or *_test.py"),
    (".test_x.py", "Test files are named test_*.py or *_test.py"),
    ("test_login.py.bak", "Test files are named test_*.py or *_test.py"),
    ("test_a.b.py", "Only the .py may have a dot"),
])
def test_filename_refused(name, message):
    with pytest.raises(ValidationError) as excinfo:
        check_filename(name)
    assert_invalid(excinfo, "file", message)
    assert len(excinfo.value.fields["file"]) == 1  # one reason, the first that applies


# --- content -----------------------------------------------------------------------------------------

def test_content_accepted_as_text():
    assert check_content(GOOD) == GOOD.decode()
    assert check_content(bytearray(GOOD)) == GOOD.decode()
    assert check_content(b"") == ""
    assert check_content("# ünïcödé: ✓\n".encode()) == "# ünïcödé: ✓\n"
    assert check_content(b"\xef\xbb\xbfx = 1\n") == "x = 1\n"  # a byte order mark is dropped
    assert check_content(b"import re\nPATTERN = '\\d+'\nassert 1 is 1\n")  # SyntaxWarnings are not errors


def test_content_is_compiled_never_run(tmp_path):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(3)\n"
    assert check_content(code.encode()) == code
    assert not marker.exists()


@pytest.mark.parametrize("size, limit", [(MAX_UPLOAD_BYTES, MAX_UPLOAD_BYTES), (10, 10), (0, 0)])
def test_content_at_the_limit_is_accepted(size, limit):
    assert check_content(b"#" * size, limit=limit) == "#" * size


@pytest.mark.parametrize("size, limit, message", [
    (MAX_UPLOAD_BYTES + 1, MAX_UPLOAD_BYTES, "The file is larger than 1 MiB."),
    (11, 10, "The file is larger than 10 bytes."),
    (2049, 2048, "The file is larger than 2 KiB."),
])
def test_content_over_the_limit_is_too_large(size, limit, message):
    with pytest.raises(UploadTooLarge) as excinfo:
        check_content(b"\xff" * size, limit=limit)  # too large wins over not UTF-8
    assert str(excinfo.value) == message


@pytest.mark.parametrize("data, message", [
    (b"x = 1\n\ndef f(:\n    pass\n", "Not valid Python: invalid syntax on line 3."),
    (b"items = [1 2]\n", "Not valid Python: invalid syntax on line 1. Perhaps you forgot a comma?"),
    (b"def test_x():\nassert True\n", "Not valid Python: expected an indented block"),
    (b"if True:\n\tx = 1\n        y = 2\n",
     "Not valid Python: inconsistent use of tabs and spaces in indentation on line 3."),
    (b"x = (\n", "Not valid Python: '(' was never closed on line 1."),
    (b"\n\nreturn 5\n", "Not valid Python: 'return' outside function on line 3."),
    (b"x = 1\x00\n", "Not valid Python: the file contains null bytes."),
    (b"(" * 300, "Not valid Python: too many nested parentheses on line 1."),
    (b"x = 1" + b" + 1" * 100_000, "Not valid Python: the code is nested too deeply to compile."),
    (b"caf\xe9 = 1\n", "The file is not UTF-8 text (byte 4 cannot be read): save it as UTF-8."),
    (b"\xff\xfet\x00e\x00s\x00t\x00", "The file is not UTF-8 text (byte 1 cannot be read)"),
    (None, "Choose a file: no content was sent."),
    ("def test_x(): pass\n", "Choose a file: no content was sent."),
])
def test_content_refused(data, message):
    with pytest.raises(ValidationError) as excinfo:
        check_content(data)
    assert_invalid(excinfo, "file", message)


# --- the whole upload --------------------------------------------------------------------------------

def test_upload_accepted():
    assert check_upload("test_login.py", "smoke", GOOD) == ("test_login.py", "smoke", GOOD.decode())


def test_upload_too_large_comes_before_anything_else():
    with pytest.raises(UploadTooLarge, match="The file is larger than 1 MiB."):
        check_upload("../conftest.py", "Bad Dir", b"\xff" * (MAX_UPLOAD_BYTES + 1))


def test_upload_name_and_directory_errors_together_before_the_content():
    with pytest.raises(ValidationError) as excinfo:
        check_upload("conftest.py", "../up", b"def f(:\n")
    assert excinfo.value.fields == {
        "file": ["conftest.py cannot be uploaded: it would change how every test of a run behaves."],
        "directory": [DIRECTORY_MESSAGE],
    }


@pytest.mark.parametrize("filename, directory, data, field, message", [
    ("notes.txt", "smoke", GOOD, "file", "Test files are named test_*.py or *_test.py"),
    ("test_login.py", "", GOOD, "directory", DIRECTORY_MESSAGE),
    ("test_login.py", "smoke", b"def f(:\n", "file", "Not valid Python: invalid syntax on line 1."),
    ("test_login.py", "smoke", b"\xff", "file", "The file is not UTF-8 text"),
])
def test_upload_refused(filename, directory, data, field, message):
    with pytest.raises(ValidationError) as excinfo:
        check_upload(filename, directory, data)
    assert_invalid(excinfo, field, message)
