"""The waves' rules in plain Python: the input's fields, the life of a wave, and the engine's decision."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from webapp.domain.errors import InvalidStateError, SystemVolumeRequired, ValidationError
from webapp.domain.waves import (MAX_PARALLEL, Member, WaveState, check_action, check_max_parallel,
                                 check_migration_ids, check_name, check_start_at, check_stop_on_error, counts,
                                 member_problem, plan, refusal_text)


def members(*specs: str) -> list[Member]:
    """``"r"`` running, ``"s"`` success, ``"e"`` error (each started by the wave), ``"."`` not started yet."""
    states = {"r": "running", "s": "success", "e": "error", ".": "not_started"}
    return [Member(i + 1, spec != ".", states[spec]) for i, spec in enumerate(specs)]


# --- plan -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("specs, max_parallel, stop, start, final", [
    (".....", 3, False, [1, 2, 3], None),  # a fresh wave fills its slots, in order
    ("rr...", 3, False, [3], None),
    ("rrr..", 3, False, [], None),  # full
    ("sr...", 2, False, [3], None),  # a finished one frees its slot
    ("ssr", 1, False, [], None),
    ("sss", 2, False, [], WaveState.DONE),
    ("ses", 2, False, [], WaveState.FAILED),  # went on after the error, ends failed
    ("se..", 1, False, [3], None),
    ("se..", 1, True, [], WaveState.FAILED),  # stop_on_error: nothing more starts, nothing runs: failed
    ("re..", 3, True, [], None),  # stop_on_error: waits for what runs
    ("se", 1, True, [], WaveState.FAILED),
    ("..", 50, False, [1, 2], None),
])
def test_plan(specs, max_parallel, stop, start, final):
    decided = plan(members(*specs), max_parallel, stop)
    assert (decided.start, decided.final) == (start, final)


def test_a_member_started_but_whose_migration_never_ran_fails_the_wave():
    assert plan([Member(1, True, "not_started")], 1, False).final is WaveState.FAILED


def test_counts_show_a_member_not_started_by_the_wave_as_not_started_whatever_its_migration_is():
    got = counts([Member(1, False, "error"), Member(2, True, "error"), Member(3, True, "running"),
                  Member(4, True, "success"), Member(5, False, "not_started")])
    assert got == {"not_started": 2, "running": 1, "success": 1, "error": 1}


# --- the life of a wave --------------------------------------------------------------------------

@pytest.mark.parametrize("action, state, started, expected", [
    ("pause", WaveState.SCHEDULED, False, WaveState.PAUSED),
    ("pause", WaveState.RUNNING, True, WaveState.PAUSED),
    ("resume", WaveState.PAUSED, True, WaveState.RUNNING),
    ("resume", WaveState.PAUSED, False, WaveState.SCHEDULED),
    ("cancel", WaveState.SCHEDULED, False, WaveState.CANCELLED),
    ("cancel", WaveState.RUNNING, True, WaveState.CANCELLED),
    ("cancel", WaveState.PAUSED, True, WaveState.CANCELLED),
])
def test_allowed_actions(action, state, started, expected):
    assert check_action(action, state, started) is expected


@pytest.mark.parametrize("action, state", [
    ("pause", WaveState.PAUSED), ("resume", WaveState.RUNNING), ("resume", WaveState.SCHEDULED),
    *[(a, s) for a in ("pause", "resume", "cancel") for s in (WaveState.DONE, WaveState.FAILED, WaveState.CANCELLED)],
])
def test_refused_actions(action, state):
    with pytest.raises(InvalidStateError) as raised:
        check_action(action, state, True)
    assert raised.value.code == "invalid_state" and state.value in raised.value.message


def test_final_states():
    assert {s for s in WaveState if s.is_final} == {WaveState.DONE, WaveState.FAILED, WaveState.CANCELLED}


# --- the input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["", "   ", None, 3, "x" * 129, "two\nlines"])
def test_bad_names(value):
    with pytest.raises(ValidationError) as raised:
        check_name(value)
    assert list(raised.value.fields) == ["name"]


def test_a_name_is_trimmed():
    assert check_name("  Wave 1 ") == "Wave 1" and check_name("x" * 128) == "x" * 128


@pytest.mark.parametrize("value", [0, MAX_PARALLEL + 1, -1, "3", 2.0, True, None])
def test_bad_max_parallel(value):
    with pytest.raises(ValidationError):
        check_max_parallel(value)


def test_max_parallel_bounds():
    assert check_max_parallel(1) == 1 and check_max_parallel(MAX_PARALLEL) == MAX_PARALLEL


@pytest.mark.parametrize("value", ["yes", 1, 0, None, "true"])
def test_bad_stop_on_error(value):
    with pytest.raises(ValidationError):
        check_stop_on_error(value)


@pytest.mark.parametrize("value, expected", [
    (None, None),
    ("2030-01-31T22:00:00Z", datetime(2030, 1, 31, 22, tzinfo=timezone.utc)),
    ("2030-01-31T23:00:00+01:00", datetime(2030, 1, 31, 22, tzinfo=timezone.utc)),
    ("2030-01-31T22:00:00", datetime(2030, 1, 31, 22, tzinfo=timezone.utc)),  # no timezone: UTC
    ("2030-01-31T22:00", datetime(2030, 1, 31, 22, tzinfo=timezone.utc)),  # a datetime-local field's value
])
def test_start_at(value, expected):
    got = check_start_at(value)
    assert got == expected and (got is None or got.utcoffset().total_seconds() == 0)


@pytest.mark.parametrize("value", ["tomorrow", "", "2030-13-01T00:00:00Z", 1700000000, ["2030-01-01"],
                                   "0001-01-01T00:00:00+23:59"])
def test_bad_start_at(value):
    with pytest.raises(ValidationError) as raised:
        check_start_at(value)
    assert list(raised.value.fields) == ["start_at"]


@pytest.mark.parametrize("value", [[], None, "1,2", [0], [1, "2"], [1, 1], [True], [2**31]])
def test_bad_migration_ids(value):
    with pytest.raises(ValidationError) as raised:
        check_migration_ids(value)
    assert list(raised.value.fields) == ["migration_ids"]


def test_migration_ids_keep_their_order():
    assert check_migration_ids([3, 1, 2]) == [3, 1, 2]


def test_member_problems():
    assert member_problem(1, None, None) == "No migration has id 1."
    assert "wave #4 (Finance)" in member_problem(1, "not_started", (4, "Finance"))
    assert "already migrated" in member_problem(1, "success", None)
    assert "running" in member_problem(1, "running", None)
    assert member_problem(1, "not_started", None) is None and member_problem(1, "error", None) is None


def test_refusal_text_says_why_in_one_line():
    assert refusal_text(ValidationError({"storage": ["No C:\\ on the source."]})) == "No C:\\ on the source."
    assert refusal_text(SystemVolumeRequired("The system volume C:\\ must be selected.")) == (
        "The system volume C:\\ must be selected.")
    assert refusal_text(InvalidStateError("A migration that is running cannot be run.")) == (
        "A migration that is running cannot be run.")
    assert refusal_text(ValidationError({"a": ["one"], "b": ["two"]}, "Preflight failed.")) == "Preflight failed. (one; two)"
