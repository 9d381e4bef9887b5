"""Masking secrets in output, and the rules of environment variable names and values (issue 14)."""
from __future__ import annotations

import base64
import random
from urllib.parse import quote

import pytest

from webapp.domain import variables
from webapp.domain.errors import ValidationError
from webapp.domain.masking import MASK, Masker

SECRET = "s3cr3t-Value/+&<"


def streamed(masker: Masker, pieces) -> str:
    return "".join(masker.feed(p) for p in pieces) + masker.flush()


def test_the_value_and_its_encodings_are_masked():
    encoded = {"url": quote(SECRET, safe=""), "b64": base64.b64encode(SECRET.encode()).decode(),
               "b64url": base64.urlsafe_b64encode(SECRET.encode()).decode(), "xml": "s3cr3t-Value/+&amp;&lt;"}
    text = " | ".join([SECRET, *encoded.values()])
    masked = Masker([SECRET]).mask(text)
    assert masked == " | ".join([MASK] * 5)


def test_short_values_are_not_masked_and_no_secret_changes_nothing():
    assert Masker(["12345"]).mask("pin 12345") == "pin 12345"
    assert streamed(Masker([]), ["a", "b"]) == "ab"


@pytest.mark.parametrize("cut", range(1, 40))
def test_a_value_split_across_two_chunks_is_masked(cut):
    text = f"token={SECRET}; again {SECRET}\n"
    assert streamed(Masker([SECRET]), [text[:cut], text[cut:]]) == f"token={MASK}; again {MASK}\n"


def test_random_chunking_never_lets_a_secret_through_and_keeps_the_rest():
    rng = random.Random(7)
    secrets = [SECRET, "another-secret", "another-secret-longer"]
    for _ in range(300):
        text = "".join(rng.choice(["x", "y\n", *secrets, "anoth"]) for _ in range(20))
        pieces, i = [], 0
        while i < len(text):
            j = i + rng.randint(1, 9)
            pieces.append(text[i:j])
            i = j
        out = streamed(Masker(secrets), pieces)
        assert out == Masker(secrets).mask(text)
        assert not any(s in out for s in secrets)


def test_the_live_log_is_held_back_only_where_a_secret_could_start():
    masker = Masker([SECRET])
    assert masker.feed("collected 3 items\n") == "collected 3 items\n"  # nothing like a secret: shown at once
    assert masker.feed("value s3cr") == "value "  # could be the secret: waits
    assert masker.feed("ambled\n") == "s3crambled\n"


def test_variable_names_follow_the_rule_and_reserved_ones_are_refused():
    assert variables.check_name("BASE_URL", "variables.BASE_URL") == "BASE_URL"
    for bad in ("base_url", "1X", "A-B", "", "X" * 65, 7):
        with pytest.raises(ValidationError):
            variables.check_name(bad, "variables.x")
    for reserved in ("PATH", "HOME", "PYTHONPATH", "CUTOVER_RUN_ID", "LD_PRELOAD", "LC_ALL", "PYTEST_ADDOPTS"):
        with pytest.raises(ValidationError, match="reserved"):
            variables.check_name(reserved, "variables.x")


def test_merging_changes_keeps_what_is_not_sent_deletes_null_and_reports_every_bad_entry():
    assert variables.merged({"A": "1", "B": "2"}, {"B": None, "C": "3"}, "secrets", deletable=True) == \
        {"A": "1", "C": "3"}
    with pytest.raises(ValidationError) as caught:
        variables.merged({}, {"PATH": "x", "OK": "y" * 4097, "FINE": "z"}, "variables", deletable=False)
    assert set(caught.value.fields) == {"variables.PATH", "variables.OK"}
    with pytest.raises(ValidationError):
        variables.merged({}, {f"V{i}": "x" for i in range(51)}, "variables", deletable=False)
    with pytest.raises(ValidationError):
        variables.merged({}, ["A"], "variables", deletable=False)
