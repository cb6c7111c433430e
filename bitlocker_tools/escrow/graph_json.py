"""Microsoft Entra ID / Intune keys as JSON: Graph's ``informationProtection/bitlocker/recoveryKeys``
responses, what PowerShell's ``ConvertTo-Json`` makes of the Graph SDK's objects, and the
legacy Azure portal API (``{"displayName": ..., "bitLockerKey": [...]}``).

The shapes vary more than the documentation suggests, so all are taken: ``value`` as an array
(a list), as an object (the docs' single GET) or absent (a bare object); ``volumeType`` as
``"1"``, ``1`` or ``"operatingSystemVolume"``; pages of ``@odata.nextLink`` concatenated in
one file (several documents one after another, or an array of pages). An object's fields are
given roles by :mod:`.columns` like a CSV's columns. A key object without ``key`` is a problem:
the list call never returns it, each key must be asked for with ``?$select=key``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from . import free_text
from . import vocabulary as v
from .columns import ColumnMap, compact, map_columns
from .record import EscrowProblem, Found, Locator
from .rows import read_row

_KEY_OBJECT_TYPE = "#microsoft.graph.bitlockerrecoverykey"
_GRAPH_FIELDS = frozenset({"id", "key", "volumetype", "deviceid", "createddatetime"})


def detect(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _documents(text: str) -> tuple[list[tuple[int, object]], json.JSONDecodeError | None]:
    """Every JSON document in ``text`` (one, or several concatenated), with the line each
    starts on; and the error that stopped the reading, if one did."""
    decoder = json.JSONDecoder()
    docs: list[tuple[int, object]] = []
    i = 0
    while True:
        while i < len(text) and text[i] in " \t\r\n,\ufeff":
            i += 1
        if i >= len(text):
            return docs, None
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            return docs, exc
        except RecursionError:  # nested deeper than the decoder goes: damage, said where it starts
            return docs, json.JSONDecodeError("nested too deeply", text, i)
        docs.append((text.count("\n", 0, i) + 1, obj))
        i = end


def read(text: str, file: str) -> Iterator[Found]:
    docs, error = _documents(text)
    if error is not None:
        where = Locator(file, line=error.lineno)
        if not docs:
            yield EscrowProblem(where, f"not valid JSON ({error.msg}): read as text instead")
            yield from free_text.read(text, file)
            return
        yield EscrowProblem(where, f"JSON stops being valid here ({error.msg}); what follows is not read")
    several = len(docs) > 1
    maps: dict[tuple[str, ...], ColumnMap] = {}  # an export repeats one object shape thousands of times
    for line, doc in docs:
        yield from _walk(doc, "$", Locator(file, line=line if several else None), {}, maps)
    last = docs[-1][1] if docs else None
    pages = last if isinstance(last, list) else [last]
    if pages and isinstance(pages[-1], dict) and any(k.lower() == "@odata.nextlink" for k in pages[-1]):
        yield EscrowProblem(Locator(file, line=docs[-1][0] if several else None, json_path="$.@odata.nextLink"),
                            "the last page has @odata.nextLink: the pages after it were not fetched")


def _field(obj: dict, name: str) -> object:
    for k, val in obj.items():
        if k.lower() == name:
            return val
    return None


def _columns(names: list[str], maps: dict[tuple[str, ...], ColumnMap]) -> ColumnMap:
    """map_columns, once per distinct set of field names in one file."""
    key = tuple(names)
    if key not in maps:
        maps[key] = map_columns(names)
    return maps[key]


def _walk(node: object, path: str, where: Locator, inherited: dict[str, str],
          maps: dict[tuple[str, ...], ColumnMap]) -> Iterator[Found]:
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]", where, inherited, maps)
        return
    if not isinstance(node, dict):
        return
    value = _field(node, "value")
    if isinstance(value, (list, dict)):
        key = next(k for k in node if k.lower() == "value")
        yield from _walk(value, f"{path}.{key}", where, inherited, maps)
        return
    legacy = _field(node, "bitlockerkey")
    if isinstance(legacy, list):
        key = next(k for k in node if k.lower() == "bitlockerkey")
        name = _field(node, "displayname")
        extra = {"displayName": str(name)} if name else {}
        for i, item in enumerate(legacy):
            if isinstance(item, dict):
                yield from _item(item, f"{path}.{key}[{i}]", where, extra, "azure_portal_json", maps)
        return
    if _is_key_object(node, maps):
        yield from _item(node, path, where, inherited, "graph_json", maps)
        return
    for k, child in node.items():
        if isinstance(child, (dict, list)):
            yield from _walk(child, f"{path}.{k}", where, inherited, maps)


def _scalars(obj: dict) -> tuple[list[str], list[str]]:
    names, values = [], []
    for k, val in obj.items():
        if isinstance(val, (dict, list)):
            continue
        names.append(k)
        values.append("" if val is None else str(val).lower() if isinstance(val, bool) else str(val))
    return names, values


def _is_key_object(obj: dict, maps: dict[tuple[str, ...], ColumnMap]) -> bool:
    names, _ = _scalars(obj)
    if str(_field(obj, "@odata.type") or "").lower() == _KEY_OBJECT_TYPE:
        return True
    cmap = _columns(names, maps)
    if cmap.has(v.KEY):  # a key, with something that says it is an escrowed one
        return cmap.has(v.KEY_ID) or cmap.has(v.DEVICE_ID) or cmap.has(v.COMPUTER) or cmap.has(v.VOLUME_TYPE)
    return cmap.has(v.KEY_ID) and len({compact(n) for n in names} & _GRAPH_FIELDS) >= 3


def _item(obj: dict, path: str, where: Locator, inherited: dict[str, str], source: str,
          maps: dict[tuple[str, ...], ColumnMap]) -> Iterator[Found]:
    names, values = _scalars(obj)
    for k, val in inherited.items():
        if k not in names:
            names.append(k)
            values.append(val)
    cmap = _columns(names, maps)
    if not cmap.has(v.KEY):
        ident = next((values[i] for i in cmap.roles.get(v.KEY_ID, []) if values[i]), "?")
        yield EscrowProblem(Locator(where.file, line=where.line, json_path=path),
                            f"key {ident} has no key field: the list call omits it; ask for each key with ?$select=key")
        return
    key_name = names[cmap.roles[v.KEY][0]]
    locator = Locator(where.file, line=where.line, json_path=f"{path}.{key_name}")
    records, problems = read_row(cmap, values, locator, source)
    yield from records
    yield from problems
