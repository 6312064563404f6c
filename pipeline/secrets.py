"""Keeping credentials out of everything posepipe writes or prints.

One rule, used for every record that is persisted or shown (the manifest's spec, error messages,
progress lines, submitted job files, exception text):

- a value under a **secret-looking key** (any word of the key is one of ``SECRET_WORDS``:
  ``key``, ``secret``, ``token``, ``password``..., in snake_case, kebab-case or CamelCase, at any
  nesting depth: ``client_kwargs.aws_secret_access_key``, ``aws_session_token``) becomes ``"***"``;
- in **any string**, the password of a URL's user-info (``https://user:PASS@host`` ->
  ``https://user:***@host``) and secret-looking query parameters (``?token=...``,
  ``X-Amz-Signature=...``) become ``***``;
- :func:`mask_text` also replaces the known secret values wherever they appear in free text
  (an exception message that quotes a key).
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

MASK = "***"

#: A key is secret when one of its words is one of these (lower case).
SECRET_WORDS = frozenset({
    "key", "secret", "token", "password", "passwd", "pwd", "passphrase", "credential", "credentials",
    "auth", "authorization", "signature", "sig", "sas", "cookie", "session",
})
# "session" covers aws_session_token; keep words, not substrings: "keypoints" and "endpoint_url" are not secret.

_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s?#]*):(?P<password>[^/\s?#]*)@")
_QUERY_PARAM = re.compile(r"(?P<head>[?&](?P<name>[^=&#\s]+)=)(?P<value>[^&#\s]*)")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
#: Known secret values shorter than this are not searched for in free text (too many false hits).
MIN_SECRET_LENGTH = 4


def is_secret_key(key: str) -> bool:
    """True when a mapping key (or URL query parameter) names a credential, judged by its words."""
    words = {w.lower() for part in re.split(r"[^A-Za-z0-9]+", str(key)) for w in _WORD.findall(part)}
    return bool(words & SECRET_WORDS)


def mask_url(text: str) -> str:
    """``text`` with URL passwords and secret query parameters replaced by ``***`` (other text unchanged)."""
    text = _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY_PARAM.sub(lambda m: m["head"] + MASK if is_secret_key(m["name"]) and m["value"] else m[0], text)


def mask(value: Any) -> Any:
    """A copy of ``value`` (nested dicts, lists, tuples, strings) with every secret replaced by ``***``.

    Values under secret-looking keys are masked whatever their type (None and "" stay as they are,
    so "no credential given" stays visible); every string is passed through :func:`mask_url`.
    """
    if isinstance(value, Mapping):
        return {k: (MASK if is_secret_key(k) and value[k] not in (None, "") else mask(value[k])) for k in value}
    if isinstance(value, (list, tuple)):
        return type(value)(mask(v) for v in value)
    if isinstance(value, str):
        return mask_url(value)
    return value


def secret_values(value: Any) -> set[str]:
    """Every credential string inside ``value``: values under secret keys and URL passwords (for mask_text)."""
    found: set[str] = set()

    def walk(v: Any, secret: bool) -> None:
        if isinstance(v, Mapping):
            for k, item in v.items():
                walk(item, secret or is_secret_key(k))
        elif isinstance(v, (list, tuple, set, frozenset)):
            for item in v:
                walk(item, secret)
        elif isinstance(v, str):
            if secret and v:
                found.add(v)
            found.update(m["password"] for m in _URL_USERINFO.finditer(v) if m["password"])
            found.update(m["value"] for m in _QUERY_PARAM.finditer(v) if is_secret_key(m["name"]) and m["value"])
        elif secret and isinstance(v, (int, float)) and not isinstance(v, bool):
            found.add(str(v))

    walk(value, False)
    return found


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free ``text`` (an exception message, a log line) with each known secret value and every URL
    password replaced by ``***``. Values shorter than MIN_SECRET_LENGTH characters are left alone."""
    for s in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(s, MASK)
    return mask_url(text)


def secret_paths(value: Any, prefix: str = "") -> list[str]:
    """Dotted paths (``storage_options.client_kwargs.aws_session_token``, ``input[0]``) of the entries
    of ``value`` that hold a secret: what :func:`strip_secrets` removes or changes."""
    if isinstance(value, Mapping):
        out: list[str] = []
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            out.extend([path] if is_secret_key(k) else secret_paths(v, path))
        return out
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in secret_paths(v, f"{prefix}[{i}]")]
    if isinstance(value, str) and strip_secrets(value) != value:
        return [prefix]
    return []


def strip_secrets(value: Any) -> Any:
    """A copy of ``value`` with secret-keyed entries removed and URL passwords dropped (``user:p@h`` ->
    ``user@h``; secret query parameters masked): what may be sent to a cluster, whose nodes bring their own credentials."""
    if isinstance(value, Mapping):
        return {k: strip_secrets(v) for k, v in value.items() if not is_secret_key(k)}
    if isinstance(value, (list, tuple)):
        return type(value)(strip_secrets(v) for v in value)
    if isinstance(value, str):
        return mask_url(_URL_USERINFO.sub(lambda m: f"{m['head']}@", value))
    return value
