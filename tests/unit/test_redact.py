"""Redaction: every secret shape in DESIGN.md is masked, ordinary evidence is left alone."""

from __future__ import annotations

import pytest

from opslib.core.redact import MASK, Redactor, find_secret, redact_text, secret_env_values


def red(**env: str) -> Redactor:
    return Redactor([env])


def test_secret_env_values_by_name_and_length():
    env = {
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "PGPASSWORD": "hunter2-long",
        "MY_API_TOKEN": "tok-123456789",
        "AWS_ACCESS_KEY_ID": "testing",  # sandbox dummy: shorter than 8, too common to mask
        "HOME": "/root-very-long-path",  # not a secret name
    }
    assert set(secret_env_values(env)) == {
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "hunter2-long",
        "tok-123456789",
    }


def test_env_values_masked_anywhere():
    r = red(PGPASSWORD="s3cr3t-pass", OTHER="x")
    assert r.text("connecting with s3cr3t-pass now") == f"connecting with {MASK} now"
    assert r.text("testing value stays") == "testing value stays"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("postgresql://app:pw-in-url@db:5432/x", "pw-in-url"),
        ("https://user:tok%40en@example.com/path", "tok%40en"),
        ("host=db user=app password=conninfo-pw dbname=x", "conninfo-pw"),
        ("host=db password = 'quoted pw' dbname=x", "quoted pw"),
        ('{"password": "json-pw"}', "json-pw"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        (
            "Authorization: AWS4-HMAC-SHA256 Credential=abc, Signature=deadbeef",
            "Signature=deadbeef",
        ),
        ("curl -H 'Authorization: Basic dXNlcjpwYXNz'", "dXNlcjpwYXNz"),
        ("header Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEow",
        ),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n(truncated", "b3BlbnNzaC1rZXk"),
    ],
)
def test_secret_shapes_masked(text, leak):
    out = Redactor([{}]).text(text)
    assert leak not in out
    assert MASK in out


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("PassWord=Mixed-Case-pw", "Mixed-Case-pw"),
        ("AUTHORIZATION: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("BEARER eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        # non-ASCII: Unicode case rules match the long s (U+017F) as "s" and the dotless i
        # (U+0131) as "i", so these strings take the path that runs every pattern
        ("pa\u017f\u017fword=long-s-pw", "long-s-pw"),
        ("author\u0131zation: Basic dotless-i-token", "dotless-i-token"),
        ("caf\u00e9 password=unicode-line-pw", "unicode-line-pw"),
    ],
)
def test_secret_shapes_masked_whatever_the_case_and_alphabet(text, leak):
    """The literal pre-check (a pattern runs only when its literal is in the text) skips no
    match: upper and mixed case, and letters that only Unicode case rules equate."""
    big = "x" * 100_000 + "\n" + text + "\n" + "y" * 100_000  # a journal-sized string
    for candidate in (text, big):
        out = Redactor([{}]).text(candidate)
        assert leak not in out
        assert MASK in out


def test_every_pattern_match_holds_one_of_its_literals():
    """What makes the pre-check safe: each sample that a pattern matches contains one of its
    literals (in lower case when the pattern ignores case)."""
    import re

    from opslib.core.redact import _PATTERNS

    samples = [
        "-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----",
        "mysql://root:pw@db/x",
        "PASSWD: 'quoted'",
        "Aws_Secret_Access_Key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "ASIAABCDEFGHIJKLMNOP",
        "Authorization=token",
        "bEaReR abcdefghijk",
    ]
    matched = 0
    for pattern, _, literals in _PATTERNS:
        for sample in samples:
            m = pattern.search(sample)
            if m is None:
                continue
            matched += 1
            found = m.group(0).lower() if pattern.flags & re.IGNORECASE else m.group(0)
            assert any(lit in found for lit in literals), (pattern.pattern, sample)
    assert matched >= len(_PATTERNS)  # every pattern met at least one sample


def test_url_user_and_host_kept():
    out = Redactor([{}]).text("postgresql://app:pw@db.internal:5432/payments")
    assert out == f"postgresql://app:{MASK}@db.internal:5432/payments"


def test_ordinary_text_untouched():
    text = "queue orders-dlq: 42 messages, oldest 3h; see https://example.com/runbook#step-2"
    assert Redactor([{}]).text(text) == text


def test_obj_walks_nested_and_skips_binary_images():
    r = red(SECRET_X="very-secret-value")
    nb = {
        "cells": [
            {
                "source": "x = 1",
                "outputs": [
                    {"text": ["line very-secret-value\n"]},
                    {
                        "data": {
                            "image/png": "AKIAIOSFODNN7EXAMPLE",
                            "text/plain": "very-secret-value",
                        }
                    },
                ],
            }
        ],
        "metadata": {"papermill": {"parameters": {"dsn": "postgres://u:pw12345678@h/d"}}},
    }
    out = r.obj(nb)
    assert out["cells"][0]["outputs"][0]["text"] == [f"line {MASK}\n"]
    assert out["cells"][0]["outputs"][1]["data"]["text/plain"] == MASK
    assert out["cells"][0]["outputs"][1]["data"]["image/png"] == "AKIAIOSFODNN7EXAMPLE"
    assert "pw12345678" not in str(out["metadata"])
    assert nb["cells"][0]["source"] == "x = 1"  # input untouched


def test_bytes_binary_unchanged():
    data = b"\x89PNG\r\n\x1a\n\xff\xfe"
    assert Redactor([{}]).bytes(data) == data


def test_redact_text_uses_process_env(monkeypatch):
    monkeypatch.setenv("OPSLIB_TEST_TOKEN", "process-token-123")
    assert redact_text("body: process-token-123") == f"body: {MASK}"


@pytest.mark.parametrize(
    "value",
    [
        "host=db password=x",
        "postgresql://u:p@h/db",
        "postgresql://u@h/db?sslmode=require&password=x",
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN PRIVATE KEY-----",
    ],
)
def test_find_secret_flags(value):
    assert find_secret(value, {})


@pytest.mark.parametrize("value", ["host=db user=app", "postgresql://u@h/db", "orders-dlq", ""])
def test_find_secret_clean(value):
    assert find_secret(value, {}) == ""


def test_find_secret_env_value():
    assert find_secret("x-hunter2-long-x", {"PGPASSWORD": "hunter2-long"})


def test_register_secret_reaches_runner_and_redact_text(tmp_path, monkeypatch):
    from opslib.core.redact import register_secret, registered_secrets

    monkeypatch.setenv("OPSLIB_RUN_DIR", str(tmp_path))
    assert register_secret("fetched-at-runtime-1") == "fetched-at-runtime-1"
    assert redact_text("value fetched-at-runtime-1 shown") == f"value {MASK} shown"
    assert registered_secrets(tmp_path) == ["fetched-at-runtime-1"]
    assert oct((tmp_path / ".redact-values.jsonl").stat().st_mode & 0o777) == "0o600"


def test_access_key_ids_keep_their_ends_only_and_count_as_redacted():
    from opslib.core.redact import was_redacted

    out = redact_text("leaked AKIAIOSFODNN7EXAMPLE, session ASIAY34FZKBOKMUTVV7A")
    assert "AKIAIOSFODNN7EXAMPLE" not in out and "ASIAY34FZKBOKMUTVV7A" not in out
    assert out == "leaked AKIA...MPLE, session ASIA...VV7A"
    assert was_redacted(out) and not was_redacted("AKIA is a prefix")
