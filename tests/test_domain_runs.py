"""Unit tests of the test-run rules: input checks, outcomes, JUnit XML (also real pytest output) and the log cap."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.domain.errors import ValidationError
from webapp.domain.runs import (
    ENVIRONMENT_IDS, MAX_FILES, LogCap, RunState, Summary, TestResult, check_environment_id, check_test_files,
    check_username, outcome, parse_junit,
)

SAMPLES = Path(__file__).resolve().parent.parent / "sample_tests"


def assert_invalid(excinfo, field, message):
    """The error names exactly ``field``, with a message containing ``message``."""
    assert set(excinfo.value.fields) == {field}
    assert any(message in m for m in excinfo.value.fields[field]), excinfo.value.fields


# --- RunState and constants --------------------------------------------------------------------------

def test_run_states():
    assert [s.value for s in RunState] == ["queued", "running", "success", "failed", "error", "cancelled"]
    assert RunState("failed") is RunState.FAILED and RunState.FAILED == "failed"
    assert {s for s in RunState if s.is_final} == {RunState.SUCCESS, RunState.FAILED, RunState.ERROR,
                                                   RunState.CANCELLED}


def test_limits():
    assert MAX_FILES == 50
    assert list(ENVIRONMENT_IDS) == list(range(1, 101))


# --- username ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("alice", "alice"),
    ("  bob \n", "bob"),
    ("Ann-Marie O'Neil", "Ann-Marie O'Neil"),
    ("José Müller", "José Müller"),
    ("a", "a"),
    ("x" * 64, "x" * 64),
    ("  " + "y" * 64 + "  ", "y" * 64),
])
def test_username_accepted(value, expected):
    assert check_username(value) == expected


@pytest.mark.parametrize("value, message", [
    (None, "Username is required."),
    (42, "Username is required."),
    (b"alice", "Username is required."),
    ("", "Username is required."),
    (" \t\n ", "Username is required."),
    ("x" * 65, "Username must be at most 64 characters."),
    ("ali\tce", "Username may only contain printable characters"),
    ("ali\nce", "Username may only contain printable characters"),
    ("ali\x00ce", "Username may only contain printable characters"),
    ("ali\x1b[31mce", "Username may only contain printable characters"),
    ("ali\u2028ce", "Username may only contain printable characters"),
])
def test_username_refused(value, message):
    with pytest.raises(ValidationError) as excinfo:
        check_username(value)
    assert_invalid(excinfo, "username", message)


# --- environment -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(1, 1), (100, 100), (42, 42), ("1", 1), (" 42 ", 42), ("007", 7),
                                             ("100", 100)])
def test_environment_accepted(value, expected):
    result = check_environment_id(value)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value", [0, 101, -1, True, False, 1.0, None, "", " ", "0", "101", "1.0", "abc", "+5",
                                   "-5", "1e2", "٣", "²", "99999999999999999999", [1], {"id": 1}])
def test_environment_refused(value):
    with pytest.raises(ValidationError) as excinfo:
        check_environment_id(value)
    assert excinfo.value.fields == {"environment_id": ["Choose an environment from 1 to 100."]}


# --- test files --------------------------------------------------------------------------------------

AVAILABLE = {f"sample_tests/test_{n}.py" for n in range(60)} | {"uploads/smoke/test_login.py"}


class Exists:
    """An ``exists`` callback that remembers what it was asked."""

    def __init__(self, available=AVAILABLE):
        self.available, self.asked = available, []

    def __call__(self, path):
        self.asked.append(path)
        return path in self.available


def test_test_files_accepted_in_order_and_each_path_asked_once():
    exists = Exists()
    paths = ["uploads/smoke/test_login.py", "sample_tests/test_3.py", "sample_tests/test_1.py"]
    assert check_test_files(paths, exists) == paths
    assert exists.asked == paths
    assert check_test_files(tuple(paths), Exists()) == paths


def test_test_files_up_to_the_limit():
    paths = [f"sample_tests/test_{n}.py" for n in range(MAX_FILES)]
    assert check_test_files(paths, Exists()) == paths


@pytest.mark.parametrize("value, messages", [
    (None, ["Choose at least one test file."]),
    ([], ["Choose at least one test file."]),
    ((), ["Choose at least one test file."]),
    ("sample_tests/test_1.py", ["Test files must be a list of paths."]),
    ({"sample_tests/test_1.py": True}, ["Test files must be a list of paths."]),
    ([f"sample_tests/test_{n}.py" for n in range(MAX_FILES + 1)], ["At most 50 test files per run."]),
    (["sample_tests/test_nope.py"], ["Not an available test file: sample_tests/test_nope.py"]),
    (["sample_tests/test_1.py", "../etc/passwd", "uploads/x/test_y.py"],
     ["Not an available test file: ../etc/passwd", "Not an available test file: uploads/x/test_y.py"]),
    (["sample_tests/test_1.py", "sample_tests/test_2.py", "sample_tests/test_1.py", "sample_tests/test_1.py"],
     ["Listed twice: sample_tests/test_1.py"]),
    (["sample_tests/test_nope.py", "sample_tests/test_nope.py"],
     ["Not an available test file: sample_tests/test_nope.py", "Listed twice: sample_tests/test_nope.py"]),
    (["sample_tests/test_1.py", 7], ["Each test file must be a path such as sample_tests/test_passing.py."]),
    ([None, "", 3.5], ["Each test file must be a path such as sample_tests/test_passing.py."]),
    (["  "], ["Each test file must be a path such as sample_tests/test_passing.py."]),
])
def test_test_files_refused(value, messages):
    with pytest.raises(ValidationError) as excinfo:
        check_test_files(value, Exists())
    assert excinfo.value.fields == {"test_files": messages}


def test_too_many_test_files_are_refused_without_asking_about_each():
    exists = Exists()
    with pytest.raises(ValidationError):
        check_test_files([f"sample_tests/test_{n}.py" for n in range(500)], exists)
    assert exists.asked == []


# --- outcome -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("exit_code, expected", [
    (0, (RunState.SUCCESS, None)),
    (1, (RunState.FAILED, None)),
    (2, (RunState.ERROR, "pytest was interrupted (exit code 2)")),
    (3, (RunState.ERROR, "pytest hit an internal error (exit code 3)")),
    (4, (RunState.ERROR, "pytest was called with a wrong command line: usage error (exit code 4)")),
    (5, (RunState.ERROR, "no tests were collected (exit code 5)")),
    (-9, (RunState.ERROR, "pytest was killed by signal SIGKILL")),
    (-15, (RunState.ERROR, "pytest was killed by signal SIGTERM")),
    (-11, (RunState.ERROR, "pytest was killed by signal SIGSEGV")),
    (-200, (RunState.ERROR, "pytest was killed by signal 200")),
    (None, (RunState.ERROR, "pytest did not run")),
    (6, (RunState.ERROR, "pytest exited with code 6")),
    (137, (RunState.ERROR, "pytest exited with code 137")),
])
def test_outcome_of_exit_codes(exit_code, expected):
    assert outcome(exit_code) == expected


@pytest.mark.parametrize("kwargs, expected", [
    ({"timed_out_after": 300}, (RunState.ERROR, "timed out after 300 s")),
    ({"timed_out_after": 300.0}, (RunState.ERROR, "timed out after 300 s")),
    ({"timed_out_after": 2.5}, (RunState.ERROR, "timed out after 2.5 s")),
    ({"timed_out_after": 0}, (RunState.ERROR, "timed out after 0 s")),
    ({"cancelled": True}, (RunState.CANCELLED, "cancelled")),
    ({"cancelled": True, "timed_out_after": 60}, (RunState.CANCELLED, "cancelled")),
    ({"cancelled": False, "timed_out_after": None}, (RunState.SUCCESS, None)),
])
def test_outcome_of_timeouts_and_cancelling(kwargs, expected):
    assert outcome(0, **kwargs) == expected
    if expected[0] is not RunState.SUCCESS:  # the exit code of a killed pytest does not matter
        assert outcome(-9, **kwargs) == expected and outcome(None, **kwargs) == expected


# --- JUnit XML, written by hand ----------------------------------------------------------------------

def results(xml):
    tests, summary = parse_junit(xml)
    return [(t.nodeid, t.outcome) for t in tests], summary


def test_result_classes():
    assert TestResult.__test__ is False  # pytest must not try to collect it
    result = TestResult("a/test_x.py::test_y", "passed", 0.5)
    assert result.__dict__ == {"nodeid": "a/test_x.py::test_y", "outcome": "passed", "duration": 0.5,
                               "message": None, "details": None, "file": None, "line": None}
    assert Summary(5, 1, 2, 1, 1).as_dict() == {"total": 5, "passed": 1, "failed": 2, "errors": 1, "skipped": 1,
                                                "xfailed": 0, "xpassed": 0}


def test_junit_bare_testsuite_outcomes_and_durations():
    tests, summary = parse_junit(
        '<?xml version="1.0" encoding="utf-8"?>'
        '<testsuite name="pytest" tests="5">'
        '<testcase classname="tests.test_a" name="test_ok" time="0.25"><system-out>hi</system-out></testcase>'
        '<testcase classname="tests.test_a" name="test_bad" time="1.5"><failure message="assert 0">x</failure>'
        "</testcase>"
        '<testcase classname="tests.test_a" name="test_boom" time="0"><error message="setup">x</error></testcase>'
        '<testcase classname="tests.test_a" name="test_later" time="0.001"><skipped type="pytest.skip" /></testcase>'
        '<testcase classname="tests.test_a" name="test_xfail"><skipped type="pytest.xfail" /></testcase>'
        "</testsuite>"
    )
    assert [(t.nodeid, t.outcome, t.duration) for t in tests] == [
        ("tests/test_a.py::test_ok", "passed", 0.25),
        ("tests/test_a.py::test_bad", "failed", 1.5),
        ("tests/test_a.py::test_boom", "error", 0.0),
        ("tests/test_a.py::test_later", "skipped", 0.001),
        ("tests/test_a.py::test_xfail", "xfailed", 0.0),
    ]
    assert summary == Summary(5, 1, 1, 1, 1, xfailed=1)
    assert [(t.message, t.details) for t in tests[1:3]] == [("assert 0", "x"), ("setup", "x")]


def test_junit_several_suites():
    found, summary = results(
        "<testsuites>"
        '<testsuite name="one"><testcase classname="a.test_one" name="test_1" /></testsuite>'
        '<testsuite name="two"><testcase classname="b.test_two" name="test_2"><failure /></testcase>'
        '<testcase classname="b.test_two" name="test_3" /></testsuite>'
        "</testsuites>"
    )
    assert found == [("a/test_one.py::test_1", "passed"), ("b/test_two.py::test_2", "failed"),
                     ("b/test_two.py::test_3", "passed")]
    assert summary == Summary(3, 2, 1, 0, 0)


def test_junit_failure_and_error_in_one_testcase_is_an_error():
    found, summary = results(
        '<testsuite><testcase classname="t.test_x" name="test_y"><failure message="assert 0" />'
        '<error message="failed on teardown" /></testcase></testsuite>'
    )
    assert found == [("t/test_x.py::test_y", "error")] and summary == Summary(1, 0, 0, 1, 0)


def test_junit_a_test_reported_twice_is_one_result_with_the_worse_outcome():
    tests, summary = parse_junit(
        '<testsuite><testcase classname="t.test_x" name="test_y" time="1.0"><failure /></testcase>'
        '<testcase classname="t.test_x" name="test_z" time="0.5" />'
        '<testcase classname="t.test_x" name="test_y" time="0.25"><error /></testcase>'
        '<testcase classname="t.test_x" name="test_z" time="0.5"><skipped /></testcase></testsuite>'
    )
    assert [(t.nodeid, t.outcome, t.duration) for t in tests] == [
        ("t/test_x.py::test_y", "error", 1.25), ("t/test_x.py::test_z", "skipped", 1.0)]
    assert summary == Summary(2, 0, 0, 1, 1)


@pytest.mark.parametrize("attributes, nodeid", [
    ('classname="sample_tests.test_x" name="test_y"', "sample_tests/test_x.py::test_y"),
    ('classname="sample_tests.test_x.TestClass" name="test_y"', "sample_tests/test_x.py::TestClass::test_y"),
    ('classname="a.b.test_x.TestOuter.TestInner" name="test_y[1.5-x::y]"',
     "a/b/test_x.py::TestOuter::TestInner::test_y[1.5-x::y]"),
    ('classname="test_x" name="test_y"', "test_x.py::test_y"),
    ('classname="uploads.Smoke.test_x" name="test_y"', "uploads/Smoke/test_x.py::test_y"),
    ('classname="uploads.smoke.Checkout_test.TestFlow" name="test_y"',
     "uploads/smoke/Checkout_test.py::TestFlow::test_y"),
    ('classname="uploads.smoke.-x_test" name="test_y"', "uploads/smoke/-x_test.py::test_y"),
    ('classname="Tests" name="test_y"', "Tests.py::test_y"),
    ('classname="" name="uploads.smoke.test_broken"', "uploads/smoke/test_broken.py"),
    ('classname="pkg.test_x.TestK" name="test_y" file="pkg/test_x.py" line="3"', "pkg/test_x.py::TestK::test_y"),
    ('classname="pkg.Test_x.TestK" name="test_y" file="pkg/Test_x.py"', "pkg/Test_x.py::TestK::test_y"),
    ('classname="pkg.test_x" name="test_y" file="pkg/test_x.py"', "pkg/test_x.py::test_y"),
])
def test_junit_node_ids(attributes, nodeid):
    found, _ = results(f"<testsuites><testsuite><testcase {attributes} /></testsuite></testsuites>")
    assert found == [(nodeid, "passed")]


@pytest.mark.parametrize("xml", [
    "", "   \n", None, 42, "not xml at all", "<testsuite><testcase", "<testsuites>",
    "<html><body><testcase classname='a.test_b' name='test_c' /></body></html>",
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><testsuite><testcase classname="a.test_b" '
    'name="&lol;" /></testsuite>',
    "<testsuite>\x00</testsuite>",
])
def test_junit_unreadable_is_empty_without_raising(xml):
    assert parse_junit(xml) == ([], Summary(0, 0, 0, 0, 0))


def test_junit_empty_suite_and_odd_times():
    assert parse_junit('<testsuites><testsuite name="pytest" tests="0" /></testsuites>') == ([], Summary())
    tests, _ = parse_junit(
        '<testsuite><testcase classname="a.test_b" name="test_1" time="soon" />'
        '<testcase classname="a.test_b" name="test_2" time="-3" />'
        '<testcase classname="a.test_b" name="test_3" time="nan" /></testsuite>'
    )
    assert [t.duration for t in tests] == [0.0, 0.0, 0.0]


# --- JUnit XML, written by real pytest runs of the samples -------------------------------------------

EXTRA = '''\
import pytest


@pytest.fixture
def resource():
    yield
    raise RuntimeError("teardown broke")


def test_fails_then_teardown_errors(resource):
    assert 1 == 2


class TestOuter:
    class TestInner:
        @pytest.mark.parametrize("value", [1.5, "a::b"])
        def test_nested(self, value):
            assert value
'''

REAL = {  # in the order pytest reports them: collection errors first
    "uploads/smoke/test_broken.py": "error",
    "sample_tests/test_passing.py::test_single_item_includes_vat": "passed",
    "sample_tests/test_passing.py::test_quantity_multiplies_the_unit_price": "passed",
    "sample_tests/test_passing.py::test_rounding_is_half_up_to_the_cent": "passed",
    "sample_tests/test_passing.py::TestDiscounts::test_discount_applies_before_vat": "passed",
    "sample_tests/test_passing.py::TestDiscounts::test_full_discount_is_free": "passed",
    "sample_tests/test_passing.py::TestDiscounts::test_discount_over_100_percent_is_refused": "passed",
    "sample_tests/test_passing.py::test_zero_quantity_is_refused": "passed",
    "sample_tests/test_failing.py::test_total_of_an_order": "passed",
    "sample_tests/test_failing.py::test_summary_of_an_order": "failed",
    "sample_tests/test_failing.py::test_shipping_label": "failed",
    "sample_tests/test_fixture_error.py::test_stock_level_of_a_known_sku": "error",
    "sample_tests/test_fixture_error.py::test_reserving_stock_is_audited": "error",
    "sample_tests/test_fixture_error.py::test_sku_format_needs_no_database": "passed",
    "sample_tests/test_skip_xfail.py::test_runs_everywhere": "passed",
    "sample_tests/test_skip_xfail.py::test_refund_through_payment_provider": "skipped",
    "sample_tests/test_skip_xfail.py::test_python2_unicode_handling": "skipped",
    "sample_tests/test_skip_xfail.py::test_skipped_at_runtime": "skipped",
    "sample_tests/test_skip_xfail.py::test_large_total_is_formatted": "xfailed",
    "sample_tests/test_skip_xfail.py::test_fixed_bug_unexpectedly_passes": "passed",  # xpass: JUnit cannot say
    "sample_tests/test_parametrized.py::test_email_validation[simple]": "passed",
    "sample_tests/test_parametrized.py::test_email_validation[plus-and-subdomains]": "passed",
    "sample_tests/test_parametrized.py::test_email_validation[no-top-level-domain]": "passed",
    "sample_tests/test_parametrized.py::test_email_validation[double-at]": "passed",
    "sample_tests/test_parametrized.py::test_email_validation[empty]": "passed",
    "sample_tests/test_parametrized.py::test_email_validation[space-in-domain]": "passed",
    "sample_tests/test_parametrized.py::test_email_validation[consecutive-dots]": "failed",
    "sample_tests/test_parametrized.py::test_item_count_wording[1-1 item]": "passed",
    "sample_tests/test_parametrized.py::test_item_count_wording[2-2 items]": "passed",
    "sample_tests/test_parametrized.py::test_item_count_wording[0-no items]": "passed",
    "uploads/smoke/test_extra.py::test_fails_then_teardown_errors": "error",
    "uploads/smoke/test_extra.py::TestOuter::TestInner::test_nested[1.5]": "passed",
    "uploads/smoke/test_extra.py::TestOuter::TestInner::test_nested[a::b]": "passed",
}
QUICK_SAMPLES = ["test_passing.py", "test_failing.py", "test_fixture_error.py", "test_skip_xfail.py",
                 "test_parametrized.py"]


def run_pytest(directory: Path, *args: str, family: str = "xunit2") -> tuple[int, str | None]:
    """pytest in ``directory`` (its own rootdir, as the workers run it); the exit code and the JUnit XML."""
    (directory / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    junit = directory / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rA", "-p", "no:cacheprovider", "-o", f"junit_family={family}",
         f"--junitxml={junit}", *args],
        cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
    )
    return proc.returncode, junit.read_text() if junit.exists() else None


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    (directory / "sample_tests").mkdir()
    for name in QUICK_SAMPLES:
        shutil.copy(SAMPLES / name, directory / "sample_tests" / name)
    (directory / "uploads" / "smoke").mkdir(parents=True)
    (directory / "uploads" / "smoke" / "test_extra.py").write_text(EXTRA)
    (directory / "uploads" / "smoke" / "test_broken.py").write_text("def test_x(:\n    pass\n")
    return directory


@pytest.fixture(scope="module", params=["xunit2", "xunit1"])
def real_run(run_dir, request):
    files = [f"sample_tests/{n}" for n in QUICK_SAMPLES] + ["uploads/smoke/test_extra.py",
                                                           "uploads/smoke/test_broken.py"]
    return run_pytest(run_dir, "--continue-on-collection-errors", *files, family=request.param)


def test_real_junit_of_the_samples(real_run):
    exit_code, xml = real_run
    assert outcome(exit_code) == (RunState.FAILED, None)
    tests, summary = parse_junit(xml)
    assert {t.nodeid: t.outcome for t in tests} == REAL
    assert [t.nodeid for t in tests] == list(REAL)
    counts = {o: sum(v == o for v in REAL.values()) for o in ("passed", "failed", "error", "skipped", "xfailed")}
    assert summary == Summary(len(REAL), counts["passed"], counts["failed"], counts["error"], counts["skipped"],
                              counts["xfailed"])
    assert summary.as_dict() == {"total": 33, "passed": 22, "failed": 3, "errors": 4, "skipped": 3, "xfailed": 1,
                                 "xpassed": 0}
    assert all(t.duration >= 0 for t in tests) and sum(t.duration for t in tests) < 10


@pytest.mark.parametrize("args, files, expected", [
    ([], {"test_empty.py": "# no tests here\n"}, (RunState.ERROR, "no tests were collected (exit code 5)")),
    (["--no-such-option"], {}, (RunState.ERROR, "pytest was called with a wrong command line: usage error "
                                                "(exit code 4)")),
    ([], {"test_ok.py": "def test_ok():\n    pass\n"}, (RunState.SUCCESS, None)),
])
def test_real_exit_codes(tmp_path, args, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    exit_code, xml = run_pytest(tmp_path, *args, *files)
    assert outcome(exit_code) == expected
    tests, summary = parse_junit(xml or "")
    assert summary.total == len(tests) == (1 if expected[0] is RunState.SUCCESS else 0)


# --- LogCap ------------------------------------------------------------------------------------------

MARKER_5MB = "\n[log truncated: output beyond 5 MiB was dropped]\n"


def test_log_cap_default_limit_and_marker():
    cap = LogCap()
    chunk = "x" * (1024 * 1024)
    assert [cap.feed(chunk) for _ in range(5)] == [chunk] * 5 and not cap.truncated
    assert cap.feed("more\n") == MARKER_5MB and cap.truncated
    assert cap.feed("and more\n") == "" and cap.feed("") == ""


@pytest.mark.parametrize("limit, shown", [(5 * 1024 * 1024, "5 MiB"), (1024 * 1024, "1 MiB"),
                                          (1536 * 1024, "1.5 MiB"), (2048, "2 KiB"), (10, "10 bytes")])
def test_log_cap_marker_names_the_limit(limit, shown):
    assert LogCap(limit).marker == f"\n[log truncated: output beyond {shown} was dropped]\n"


def test_log_cap_under_and_exactly_at_the_limit_keeps_everything():
    cap = LogCap(10)
    assert cap.feed("abcd") == "abcd"
    assert cap.feed("") == "" and not cap.truncated  # nothing was dropped yet
    assert cap.feed("efghij") == "efghij" and not cap.truncated
    assert cap.feed("k") == "\n[log truncated: output beyond 10 bytes was dropped]\n" and cap.truncated
    assert cap.feed("l") == ""


def test_log_cap_cuts_the_piece_that_crosses_the_limit():
    cap = LogCap(10)
    assert cap.feed("abcdefg") == "abcdefg"
    assert cap.feed("hijklmnop\n") == "hij" + cap.marker
    assert cap.feed("qrs\n") == "" and cap.truncated


@pytest.mark.parametrize("text, kept", [
    ("é" * 10, "é" * 5),  # 2 bytes each: 10 bytes
    ("a" + "é" * 10, "a" + "é" * 4),  # the fifth é would end at byte 11
    ("€" * 4, "€" * 3),  # 3 bytes each: 9 bytes, the fourth does not fit
    ("😀" * 3, "😀" * 2),  # 4 bytes each: 8 bytes
    ("abcdefghi😀", "abcdefghi"),  # 9 + 4 bytes: no half emoji
    ("ab\udcffcd" * 3, "ab\udcffcdab"),  # a lone surrogate (3 bytes) is kept, not crashed on
])
def test_log_cap_counts_utf8_bytes_and_never_splits_a_character(text, kept):
    cap = LogCap(10)
    stored = cap.feed(text)
    assert stored == kept + cap.marker and cap.truncated
    assert len(kept.encode("utf-8", "surrogatepass")) <= 10


def test_log_cap_multibyte_characters_fill_the_limit_exactly():
    cap = LogCap(9)
    assert cap.feed("€€") == "€€" and cap.feed("€") == "€" and not cap.truncated
    assert cap.feed("a") == cap.marker


def test_log_cap_of_zero_and_many_small_pieces():
    cap = LogCap(0)
    assert cap.feed("") == "" and not cap.truncated
    assert cap.feed("x") == cap.marker and cap.feed("y") == ""
    cap = LogCap(1000)
    stored = "".join(cap.feed(f"line {n}: ünïcödé\n") for n in range(500))
    assert stored.count("[log truncated") == 1 and stored.endswith(cap.marker)
    assert len(stored[: -len(cap.marker)].encode()) <= 1000


@pytest.mark.parametrize("limit", [-1, 1.5, "5", True, None])
def test_log_cap_limit_must_be_bytes(limit):
    with pytest.raises(ValueError):
        LogCap(limit)


# --- each test's result (domain/results.py) -----------------------------------------------------------

from webapp.domain import results as res  # noqa: E402


@pytest.mark.parametrize("tests, state", [
    ([], RunState.SUCCESS),
    ([TestResult("t.py::a", o, 0.0) for o in ("passed", "skipped", "xfailed", "xpassed")], RunState.SUCCESS),
    ([TestResult("t.py::a", "passed", 0.0), TestResult("t.py::b", "failed", 0.0)], RunState.FAILED),
    ([TestResult("t.py::a", "error", 0.0)], RunState.FAILED),
])
def test_a_run_fails_on_a_failed_test_or_an_error_only(tests, state):
    summary = Summary.of(tests)
    assert summary.failing is (state is RunState.FAILED)
    assert outcome(0, summary=summary) == (state, None)
    assert outcome(1, summary=summary) == (RunState.FAILED, None)  # pytest's exit code still says failed
    assert outcome(5, summary=summary)[0] is RunState.ERROR


def test_summary_counts_every_outcome():
    tests = [TestResult(f"t.py::{o}", o, 0.1) for o in res.OUTCOMES] + [TestResult("t.py::p2", "passed", 0.0)]
    assert Summary.of(tests).as_dict() == {"total": 7, "passed": 2, "failed": 1, "errors": 1, "skipped": 1,
                                           "xfailed": 1, "xpassed": 1}


def test_details_are_capped_at_64_kib_of_utf8_with_a_marker():
    assert res.cap_details("short") == "short" and res.cap_details("  \n") is None and res.cap_details(5) is None
    exact = "x" * res.DETAILS_MAX_BYTES
    assert res.cap_details(exact) == exact
    capped = res.cap_details("é" * 40_000)  # 80 000 bytes: cut between characters
    assert capped.endswith("\n[details truncated at 64 KiB]")
    kept = capped[: -len(res.DETAILS_MARKER)]
    assert set(kept) == {"é"} and len(kept.encode()) == res.DETAILS_MAX_BYTES
    assert res.cap_details("a\x00b") == "a\ufffdb"


@pytest.mark.parametrize("entry", [
    None, [], "x", {"nodeid": "", "outcome": "passed"}, {"nodeid": "t.py::a", "outcome": "exploded"},
    {"nodeid": 5, "outcome": "passed"}, {"nodeid": "   ", "outcome": "failed"}, {"end": 3},
])
def test_an_entry_that_is_not_a_result_is_dropped(entry):
    assert res.clean(entry) is None


def test_untrusted_entries_are_checked_and_capped():
    test = res.clean({"nodeid": "n" * 5000, "outcome": "failed", "duration": "1.5", "message": "\n  first\nsecond",
                      "details": "d" * 100_000, "file": ["x"], "line": True, "extra": object()})
    assert (len(test.nodeid), test.duration, test.message, test.file, test.line) == (1000, 0.0, "first", None, None)
    assert test.details.endswith(res.DETAILS_MARKER)
    assert res.clean({"nodeid": "t", "outcome": "failed", "message": "m" * 5000}).message == "m" * 1000
    for duration in (float("nan"), float("inf"), -1, True):
        assert res.clean({"nodeid": "t", "outcome": "passed", "duration": duration}).duration == 0.0
    passed = res.clean({"nodeid": "t", "outcome": "passed", "message": "no", "details": "no", "file": "t.py",
                        "line": 3})
    assert (passed.message, passed.details, passed.file, passed.line) == (None, None, "t.py", 3)
    assert res.clean({"nodeid": "t", "outcome": "passed", "line": 0}).line is None
    odd = res.clean({"nodeid": "t.py::\udc80é", "outcome": "failed", "message": "\ud800 x\x00", "details": "\udfff"})
    assert (odd.nodeid, odd.message, odd.details) == ("t.py::?é", "? x\ufffd", "?")  # PostgreSQL takes them


def test_reading_the_plugin_lines_skips_garbage_and_knows_whether_the_session_ended():
    text = "\n".join([
        '{"nodeid": "t.py::a", "outcome": "failed", "duration": 0.5, "message": "assert 1 == 2"}',
        "garbage {", "[1, 2]", '"a string"', "\x00\x00" + '{"nodeid": "t.py::b", "outcome": "xfailed"}',
        '{"nodeid": "t.py::a", "outcome": "passed"}',  # a node id twice: the first stays
        '{"end": 2}', "[" * 100_000])
    tests, ended = res.read_lines(text)
    assert [(t.nodeid, t.outcome) for t in tests] == [("t.py::a", "failed"), ("t.py::b", "xfailed")]
    assert not ended  # lines that are not results: someone else wrote there, the JUnit report decides
    whole = '{"nodeid": "t.py::a", "outcome": "passed"}\n{"nodeid": "t.py::b", "outcome": "skipped"}\n'
    assert res.read_lines(whole + '{"end": 2}\n')[1] is True
    for end in ('{"end": 3}', '{"end": 1}', '{"end": "2"}', '{"end": 2.0}', '{"end": true}', ""):
        assert res.read_lines(whole + end)[1] is False, end
    assert res.read_lines(None) == ([], False) and res.read_lines("") == ([], False)
    many = "\n".join(f'{{"nodeid": "t.py::{i}", "outcome": "passed"}}' for i in range(res.MAX_RESULTS + 5))
    assert len(res.read_lines(many)[0]) == res.MAX_RESULTS


def test_choosing_between_the_plugin_and_junit():
    rich = [TestResult("t.py::a", "failed", 0.5, "boom", "trace"), TestResult("t.py::b", "xpassed", 0.1)]
    junit = [TestResult("t.py::a", "failed", 0.5), TestResult("t.py::b", "passed", 0.1),
             TestResult("t.py::c", "passed", 0.0)]
    assert res.choose((rich, True), junit) == rich                       # the session ended: the plugin's
    assert res.choose((rich, False), junit) == [rich[0], rich[1], junit[2]]  # cut short: JUnit, enriched
    assert res.choose(([], False), junit) == junit                         # deleted or garbled: JUnit
    assert res.choose((rich[:1], False), []) == rich[:1]                   # killed: what the plugin wrote
    assert res.choose(([], True), junit) == junit
