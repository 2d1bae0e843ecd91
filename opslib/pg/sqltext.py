"""Statement text safe for the evidence: every literal replaced by ``?``.

Session and statement views (``pg_stat_activity.query``, ``pg_stat_statements.query``) keep
the text a client sent, literals included: an ``ALTER ROLE ... PASSWORD '...'`` or an INSERT of
a token would otherwise reach the notebook, the HTML and record.json. Every reader of those
views passes the text through :func:`redact_sql` before it leaves the adapter.
"""

from __future__ import annotations

import re

_LITERALS = re.compile(
    r"""
    (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$.*?\$(?P=tag)?\$)   # $$...$$ or $tag$...$tag$
  | (?P<string>[EeBbXxNn]?'(?:[^']|'')*'(?!'))                           # 'text', E'..', B'..'
  | (?P<param>\$\d+)                                                     # $1: already normalised
  | (?P<number>(?<![\w$.])(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)(?![\w$]))  # 42, 3.14, 1e6
    """,
    re.VERBOSE | re.DOTALL,
)


def redact_sql(text: str) -> str:
    """Statement text with every literal replaced by ``?`` (``$n`` parameters are kept).

    ``pg_stat_statements`` already normalises the constants of planned statements, but utility
    statements (``ALTER ROLE ... PASSWORD '...'``, ``COPY``, ``SET``) are kept with their text,
    and truncated text can end inside a literal; an unterminated quote is cut off too. A
    regular expression, not a SQL parser: it only has to find quotes, dollar quotes and numbers,
    and adding a parser dependency for that is not worth it.
    """

    def sub(m: re.Match) -> str:
        return m.group("param") or "?"

    out = _LITERALS.sub(sub, text or "")
    cut = re.search(r"[EeBbXxNn]?'|\$[A-Za-z_]*\$", out)  # an unterminated literal: drop the rest
    if cut:
        out = out[: cut.start()] + "?…"
    return re.sub(r"\s+", " ", out).strip()
