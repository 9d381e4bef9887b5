"""Unit tests of the account rules (webapp.domain.accounts): plain Python, no Flask, no database."""
from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from webapp.domain.accounts import (ANONYMOUS, MAX_TOKEN_DAYS, TOKEN_PREFIX, Principal, Role, check_display_name,
                                    check_expiry_days, check_password, check_role, check_token_name,
                                    check_token_role, check_username, looks_like_token, new_token, token_hash)
from webapp.domain.errors import ValidationError


def refused(check, value, *args, field: str) -> str:
    """The one message ``check`` refuses ``value`` with, keyed by ``field``."""
    with pytest.raises(ValidationError) as excinfo:
        check(value, *args)
    assert set(excinfo.value.fields) == {field}, excinfo.value.fields
    [message] = excinfo.value.fields[field]
    return message


# --- usernames ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("alice", "alice"),
    ("  Alice  ", "alice"),  # stored lower-case, trimmed: compared without regard to case
    ("BOB.smith_2-x", "bob.smith_2-x"),
    ("a", "a"),
    ("a" * 64, "a" * 64),
    ("0", "0"),
    ("alice\n", "alice"),
])
def test_a_username_is_trimmed_and_lower_cased(value, expected):
    assert check_username(value) == expected


@pytest.mark.parametrize("value, message", [
    (None, "Username is required."),
    ("", "Username is required."),
    ("   ", "Username is required."),
    (42, "Username is required."),
    (["alice"], "Username is required."),
    ("a" * 65, "1 to 64 characters"),
    ("al ice", "1 to 64 characters"),
    ("alice@corp", "1 to 64 characters"),
    ("al/ice", "1 to 64 characters"),
    ("al:ice", "1 to 64 characters"),  # would break HTTP Basic
    ("élodie", "1 to 64 characters"),
    ("ali\x00ce", "1 to 64 characters"),
])
def test_a_bad_username_is_refused_with_a_message(value, message):
    assert message in refused(check_username, value, field="username")


def test_the_username_error_uses_the_given_path():
    assert refused(check_username, "", "user.name", field="user.name")


# --- passwords ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["12345678", "pass word with spaces", "x" * 256, "ünïcødé!", " leading-space"])
def test_a_good_password_is_kept_exactly(value):
    assert check_password(value) == value  # never trimmed or changed


@pytest.mark.parametrize("value, message", [
    (None, "Password is required."),
    ("", "Password is required."),
    (12345678, "Password is required."),
    ("1234567", "at least 8 characters"),
    ("x" * 257, "at most 256 characters"),
    ("abc\x00defgh", "must not contain NUL"),
])
def test_a_bad_password_is_refused_with_a_message(value, message):
    assert message in refused(check_password, value, field="password")


def test_the_password_error_uses_the_given_path():
    assert refused(check_password, "short", "new_password", field="new_password")


# --- roles --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("viewer", Role.VIEWER), ("operator", Role.OPERATOR),
                                             ("admin", Role.ADMIN), (Role.ADMIN, Role.ADMIN)])
def test_a_role_is_one_of_three(value, expected):
    assert check_role(value) is expected


@pytest.mark.parametrize("value", ["Admin", "root", "", None, 2, "superuser"])
def test_an_unknown_role_is_refused(value):
    assert refused(check_role, value, field="role") == "Role must be one of: viewer, operator, admin."


def test_roles_are_ordered_viewer_operator_admin():
    assert [r.rank for r in (Role.VIEWER, Role.OPERATOR, Role.ADMIN)] == [0, 1, 2]
    assert list(Role) == [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


@pytest.mark.parametrize("role, needed, allowed", [
    (Role.VIEWER, Role.VIEWER, True), (Role.VIEWER, Role.OPERATOR, False), (Role.VIEWER, Role.ADMIN, False),
    (Role.OPERATOR, Role.VIEWER, True), (Role.OPERATOR, Role.OPERATOR, True), (Role.OPERATOR, Role.ADMIN, False),
    (Role.ADMIN, Role.VIEWER, True), (Role.ADMIN, Role.OPERATOR, True), (Role.ADMIN, Role.ADMIN, True),
])
def test_each_role_may_do_what_the_ones_below_it_may(role, needed, allowed):
    assert role.allows(needed) is allowed
    assert Principal("someone", role, "api").can(needed) is allowed
    assert Principal("someone", role, "api").can(needed.value) is allowed  # a role's name works too


@pytest.mark.parametrize("roles, lowest", [
    ((Role.ADMIN, Role.VIEWER), Role.VIEWER), ((Role.OPERATOR, Role.ADMIN), Role.OPERATOR),
    ((Role.ADMIN,), Role.ADMIN), ((Role.ADMIN, Role.OPERATOR, Role.VIEWER), Role.VIEWER),
])
def test_lowest_role(roles, lowest):
    assert Role.lowest(*roles) is lowest


def test_only_an_admin_principal_is_admin():
    assert Principal("a", Role.ADMIN, "web").is_admin
    assert not Principal("o", Role.OPERATOR, "web").is_admin
    assert not Principal("v", Role.VIEWER, "web").is_admin


def test_anonymous_is_not_a_role():
    with pytest.raises(ValueError):
        Role(ANONYMOUS)


# --- a token's role: never above its owner's -----------------------------------------------------------

@pytest.mark.parametrize("value, own, expected", [
    (None, Role.VIEWER, Role.VIEWER),  # not given: the owner's role
    (None, Role.ADMIN, Role.ADMIN),
    ("viewer", Role.ADMIN, Role.VIEWER),
    ("operator", Role.ADMIN, Role.OPERATOR),
    ("admin", Role.ADMIN, Role.ADMIN),
    ("viewer", Role.OPERATOR, Role.VIEWER),
    ("operator", Role.OPERATOR, Role.OPERATOR),
    ("viewer", Role.VIEWER, Role.VIEWER),
])
def test_a_token_acts_with_its_owners_role_or_a_lower_one(value, own, expected):
    assert check_token_role(value, own) is expected


@pytest.mark.parametrize("value, own, message", [
    ("operator", Role.VIEWER, "cannot be higher than your own (viewer)"),
    ("admin", Role.VIEWER, "cannot be higher than your own (viewer)"),
    ("admin", Role.OPERATOR, "cannot be higher than your own (operator)"),
    ("root", Role.ADMIN, "Role must be one of"),
    ("", Role.ADMIN, "Role must be one of"),
])
def test_a_token_role_above_its_owners_is_refused(value, own, message):
    assert message in refused(check_token_role, value, own, field="role")


# --- token names and expiry -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("ci", "ci"), ("  nightly job  ", "nightly job"), ("x" * 64, "x" * 64)])
def test_a_token_name_is_trimmed(value, expected):
    assert check_token_name(value) == expected


@pytest.mark.parametrize("value, message", [
    (None, "Name is required"), ("", "Name is required"), ("  ", "Name is required"), (5, "Name is required"),
    ("x" * 65, "at most 64 printable characters"), ("a\nb", "at most 64 printable characters"),
    ("bell\x07", "at most 64 printable characters"),
])
def test_a_bad_token_name_is_refused(value, message):
    assert message in refused(check_token_name, value, field="name")


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None),  # never expires
    (1, 1), (30, 30), (MAX_TOKEN_DAYS, MAX_TOKEN_DAYS), ("7", 7), (" 90 ", 90),
])
def test_expiry_is_a_whole_number_of_days_or_never(value, expected):
    assert check_expiry_days(value) == expected


@pytest.mark.parametrize("value", [0, -1, MAX_TOKEN_DAYS + 1, "0", "-3", "1.5", 1.5, "ten", True, False, [7],
                                   "٣", "²"])  # digits to str.isdigit(), but not ASCII: "²" even breaks int()
def test_a_bad_expiry_is_refused(value):
    message = refused(check_expiry_days, value, field="expires_in_days")
    assert message == f"Expiry must be a whole number of days from 1 to {MAX_TOKEN_DAYS}."


# --- display names --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(None, ""), ("", ""), ("  Ada Lovelace ", "Ada Lovelace"),
                                             ("x" * 128, "x" * 128)])
def test_a_display_name_is_optional_and_trimmed(value, expected):
    assert check_display_name(value) == expected


@pytest.mark.parametrize("value, message", [(5, "must be text"), ("x" * 129, "at most 128"), ("a\tb", "at most 128")])
def test_a_bad_display_name_is_refused(value, message):
    assert message in refused(check_display_name, value, field="display_name")


# --- the token itself -----------------------------------------------------------------------------------

def test_a_new_token_has_the_prefix_and_256_random_bits():
    token = new_token()
    assert TOKEN_PREFIX == "cut_" and token.startswith("cut_")
    assert re.fullmatch(r"cut_[A-Za-z0-9_-]{43}", token), token
    assert looks_like_token(token)


def test_new_tokens_differ():
    assert len({new_token() for _ in range(200)}) == 200


def test_the_hash_is_a_keyed_hmac_sha256():
    token = "cut_" + "a" * 43
    expected = hmac.new(b"key-1", token.encode(), hashlib.sha256).hexdigest()
    assert token_hash(token, b"key-1") == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert token_hash(token, b"key-1") == token_hash(token, b"key-1")  # deterministic: one indexed lookup
    assert token_hash(token, b"key-2") != expected  # another key: another hash
    assert token_hash(token + "b", b"key-1") != expected
    assert token not in expected and token[4:] not in expected
    assert hashlib.sha256(token.encode()).hexdigest() != expected  # keyed, not a bare SHA-256


def test_hashing_a_string_that_is_not_valid_utf8_does_not_crash():
    assert len(token_hash("cut_\udcff" + "a" * 40, b"k")) == 64


@pytest.mark.parametrize("value, looks", [
    ("cut_" + "a" * 43, True),
    ("cut_" + "a" * 16, True),  # 20 characters: the shortest accepted
    ("cut_" + "a" * 15, False),
    ("cut_" + "a" * 124, True),  # 128
    ("cut_" + "a" * 125, False),
    ("tok_" + "a" * 43, False),
    ("CUT_" + "a" * 43, False),
    ("a" * 47, False),
    ("", False),
])
def test_only_something_shaped_like_a_token_is_looked_up(value, looks):
    assert looks_like_token(value) is looks
