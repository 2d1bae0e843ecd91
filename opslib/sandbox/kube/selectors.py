"""Label and field selectors and the three PATCH flavours, as the API server applies them.

Written here rather than taken from a library: the selector grammar is small (``=``, ``!=``,
``in``, ``notin``, ``!key``, ``key``) and no maintained Python package implements it; JSON
patches use ``jsonpatch``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

# --- selectors -----------------------------------------------------------------------------

_LABEL_TERM = re.compile(
    r"""^\s*(?:
        (?P<neg>!)\s*(?P<nkey>[\w./-]+)                                  # !key
      | (?P<skey>[\w./-]+)\s+(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\)   # key in (a,b)
      | (?P<key>[\w./-]+)\s*(?P<op>==|=|!=)\s*(?P<val>[\w./-]*)         # key=value
      | (?P<ekey>[\w./-]+)                                               # key
    )\s*$""",
    re.VERBOSE,
)


class SelectorError(ValueError):
    """Raised when a label or field selector cannot be parsed (answered with HTTP 400)."""


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )`` (``a in (x,y),b=c``)."""
    terms, depth, cur = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t for t in terms if t.strip()]


def match_labels(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics: every comma-separated term must hold."""
    terms = [(_LABEL_TERM.match(t), t) for t in _split_terms(selector or "")]
    for m, term in terms:  # all parsed first: a malformed term is an error even after a miss
        if not m:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    for m, _ in terms:
        if m["nkey"]:
            ok = m["nkey"] not in labels
        elif m["skey"]:
            vals = {v.strip() for v in m["vals"].split(",") if v.strip()}
            ok = (
                labels.get(m["skey"]) in vals
                if m["setop"] == "in"
                else labels.get(m["skey"]) not in vals
            )
        elif m["key"]:
            have = labels.get(m["key"])
            ok = have == m["val"] if m["op"] in ("=", "==") else have != m["val"]
        else:
            ok = m["ekey"] in labels
        if not ok:
            return False
    return True


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def match_fields(selector: str, obj: dict) -> bool:
    """Field selectors (``status.phase=Running,metadata.name!=x``) on any dotted path."""
    terms = [
        (re.match(r"^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$", t), t)
        for t in _split_terms(selector or "")
    ]
    for m, term in terms:
        if not m:
            raise SelectorError(f"invalid field selector: {term!r}")
    for m, _ in terms:
        path, op, want = m.groups()
        have = _dig(obj, path)
        have = "" if have is None else str(have)
        if (have == want) != (op in ("=", "==")):
            return False
    return True


# --- patches -------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``null`` deletes a key)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """An approximation of strategic merge: lists of named dicts (containers, env, ports)
    merge item by item on ``name``; other lists are replaced, as in a merge patch."""
    if isinstance(patch, list) and isinstance(target, list):
        if all(isinstance(i, dict) and "name" in i for i in patch + target):
            merged = [copy.deepcopy(i) for i in target]
            index = {i["name"]: n for n, i in enumerate(merged)}
            for item in patch:
                if item["name"] in index:
                    merged[index[item["name"]]] = strategic_merge_patch(
                        merged[index[item["name"]]], item
                    )
                else:
                    merged.append(copy.deepcopy(item))
            return merged
        return copy.deepcopy(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result
