"""What a day summary holds, as plain arrays: a tree of NamedTuples, tuples, numpy arrays,
texts, numbers and data frames flattened into named arrays and a JSON layout, and back.

The arrays are plain numbers (utils.reduce.summary_file writes their bytes), never pickled: a
summary is a cache file any user of the host could have put there, and unpickling it would run
whatever it holds. Texts are kept as one UTF-8 blob and the offsets into it
(`surrogatepass`, so that a command line that is not valid UTF-8 comes back as it went in);
an array of texts as its distinct texts and each item's code (a batch's runs repeat the
command lines of a few hundred programs).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

Arrays = dict[str, npt.NDArray[Any]]
Layout = dict[str, Any]


class CodecError(ValueError):
    """A layout that does not describe a value this codec made (another version, or a
    damaged file)."""


class Sink:
    """Where encode puts the arrays, each under a fresh name: "a..." for the hot ones, read
    with the summary, "c..." for the cold ones, the fields of the record classes in `cold`
    (but the ones named there), read only when a deferred record asks for them."""

    def __init__(self, cold: Mapping[str, Collection[str]] | None = None) -> None:
        self.arrays: Arrays = {}
        self.cold = cold or {}
        self.cooling = False

    def add(self, array: npt.NDArray[Any]) -> str:
        key = f"{'c' if self.cooling else 'a'}{len(self.arrays)}"
        self.arrays[key] = array
        return key


def encode(value: object, arrays: Sink) -> Layout:
    """value's layout; its arrays are added to the sink under fresh names."""
    if value is None:
        return {"t": "none"}
    if isinstance(value, bool | int | float | str):
        return {"t": type(value).__name__, "v": value}
    if isinstance(value, np.ndarray):
        return _encode_array(value, arrays)
    if isinstance(value, pd.DataFrame):
        return _encode_frame(value, arrays)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return _encode_record(value, arrays)
    if isinstance(value, tuple | list):
        return {"t": type(value).__name__, "items": [encode(item, arrays) for item in value]}
    raise TypeError(f"a day summary cannot hold a {type(value).__name__}")


def decode(
    layout: Layout,
    arrays: Mapping[str, npt.NDArray[Any]],
    records: Records,
    deferred: Mapping[str, Deferred] | None = None,
) -> Any:
    """The value a layout describes; CodecError if it describes none. A record whose class is
    in `deferred` is handed, layout and arrays, to that function instead: arrays may be a
    mapping of the hot arrays only: a deferred record's cold ones are read when it asks."""
    try:
        return _decode(layout, arrays, records, deferred or {})
    except (KeyError, TypeError, ValueError, IndexError) as err:
        if isinstance(err, CodecError):
            raise
        raise CodecError(f"not a summary this version wrote ({type(err).__name__}: {err})") from err


# The record classes a layout may name, by class name.
Records = Mapping[str, type[NamedTuple]]
# Makes a stand-in for a record from its layout and the (lazy) arrays.
Deferred = Callable[[Layout, Mapping[str, npt.NDArray[Any]]], Any]


def _decode(
    layout: Layout,
    arrays: Mapping[str, npt.NDArray[Any]],
    records: Records,
    deferred: Mapping[str, Deferred],
) -> Any:
    kind = layout["t"]
    if kind in _SCALARS:
        value = layout["v"]
        if not isinstance(value, _SCALARS[kind]) or (kind == "int" and isinstance(value, bool)):
            raise CodecError(f"a {kind} that is a {type(value).__name__}")
        return float(layout["v"]) if kind == "float" else value
    if kind == "record" and layout["class"] in deferred:
        return deferred[layout["class"]](layout, arrays)
    if kind == "record":
        cls = records[layout["class"]]
        fields = layout["fields"]
        if tuple(fields) != cls._fields:
            raise CodecError(f"{layout['class']} has other fields now")
        return cls(*(_decode(fields[name], arrays, records, deferred) for name in cls._fields))
    if kind in ("tuple", "list"):
        items = [_decode(item, arrays, records, deferred) for item in layout["items"]]
        return tuple(items) if kind == "tuple" else items
    leaf = _LEAVES.get(kind)
    if leaf is None:
        raise CodecError(f"unknown kind {kind!r}")
    return leaf(layout, arrays)


# JSON gives an int for a float that is whole (1.0 is written 1).
_SCALARS: dict[str, type | tuple[type, ...]] = {
    "bool": bool,
    "int": int,
    "float": (int, float),
    "str": str,
}


def _encode_record(value: tuple[Any, ...], arrays: Sink) -> Layout:
    name = type(value).__name__
    hot = arrays.cold.get(name)
    fields: dict[str, Layout] = {}
    for field, item in zip(value._fields, value, strict=True):  # type: ignore[attr-defined]
        was = arrays.cooling
        arrays.cooling = was or (hot is not None and field not in hot)
        fields[field] = encode(item, arrays)
        arrays.cooling = was
    return {"t": "record", "class": name, "fields": fields}


def _encode_array(value: npt.NDArray[Any], arrays: Sink) -> Layout:
    if value.dtype == object:
        return _encode_coded_texts(value, arrays)
    return {"t": "array", "key": arrays.add(value)}


def _encode_coded_texts(values: npt.NDArray[Any], arrays: Sink) -> Layout:
    """Texts (None or NaN allowed) as their distinct texts, in order of first appearance,
    and each one's code into them (-1: missing)."""
    code_of: dict[str, int] = {}
    codes = np.fromiter(
        (
            code_of.setdefault(item, len(code_of)) if isinstance(item, str) else -1
            for item in values
        ),
        np.int32,
        len(values),
    )
    distinct = np.empty(len(code_of), dtype=object)
    distinct[:] = list(code_of)
    joinable = not any(_SEPARATOR in text for text in code_of)
    return {
        "t": "coded texts",
        "texts": (
            _encode_joined(list(code_of), arrays) if joinable else _encode_texts(distinct, arrays)
        ),
        "indices": arrays.add(codes),
    }


# Joins texts none of which holds it (ps(1) prints a command line's arguments separated by
# spaces); the texts of an array that holds one are kept with their offsets instead.
_SEPARATOR = "\0"


def _encode_joined(texts: list[str], arrays: Sink) -> Layout:
    """Texts none of which holds a NUL as one UTF-8 blob, NUL between each two: read back
    with one decode and one split."""
    blob = _SEPARATOR.join(texts).encode("utf-8", "surrogatepass")
    return {
        "t": "joined texts",
        "joined": arrays.add(np.frombuffer(blob, dtype=np.uint8)),
        "count": len(texts),
    }


def _decode_joined(
    layout: Layout, arrays: Mapping[str, npt.NDArray[Any]]
) -> npt.NDArray[np.object_]:
    count = layout["count"]
    if not isinstance(count, int) or isinstance(count, bool):
        raise CodecError("a count of texts that is no integer")
    text = arrays[layout["joined"]].tobytes().decode("utf-8", "surrogatepass")
    items = text.split(_SEPARATOR) if count else []
    if len(items) != count or (not count and text):
        raise CodecError("joined texts that are not as many as their count")
    out = np.empty(count, dtype=object)
    out[:] = items
    return out


def _decode_coded_texts(
    layout: Layout, arrays: Mapping[str, npt.NDArray[Any]]
) -> npt.NDArray[np.object_]:
    inner = layout["texts"]
    joined = isinstance(inner, dict) and inner.get("t") == "joined texts"
    distinct = _decode_joined(inner, arrays) if joined else _decode_texts(inner, arrays)
    codes = arrays[layout["indices"]]
    if codes.dtype != np.int32 or codes.ndim != 1:
        raise CodecError("text codes that are not one column of int32")
    if len(codes) and (int(codes.min()) < -1 or int(codes.max()) >= len(distinct)):
        raise CodecError("text codes outside their texts")
    # Code -1 takes the None put after the distinct texts.
    texts = np.empty(len(distinct) + 1, dtype=object)
    texts[:-1] = distinct
    out: npt.NDArray[np.object_] = texts[codes]
    return out


def _encode_texts(values: npt.NDArray[Any] | pd.Index, arrays: Sink) -> Layout:
    """Texts (None or NaN allowed) as one UTF-8 blob, the end offset of each, and a mask."""
    items = list(values)
    missing = np.array([not isinstance(item, str) for item in items], dtype=bool)
    encoded = [
        b"" if gone else item.encode("utf-8", "surrogatepass")
        for item, gone in zip(items, missing, strict=True)
    ]
    blob = arrays.add(np.frombuffer(b"".join(encoded), dtype=np.uint8))
    ends = arrays.add(np.cumsum([len(item) for item in encoded], dtype=np.int64))
    mask = arrays.add(missing)
    return {"t": "texts", "blob": blob, "ends": ends, "missing": mask}


def _decode_texts(
    layout: Layout, arrays: Mapping[str, npt.NDArray[Any]]
) -> npt.NDArray[np.object_]:
    data = arrays[layout["blob"]].tobytes()
    ends = arrays[layout["ends"]].tolist()
    missing = arrays[layout["missing"]].tolist()
    if len(ends) != len(missing) or (ends and ends[-1] != len(data)):
        raise CodecError("texts whose offsets do not match their blob")
    starts = [0, *ends][:-1]
    if data.isascii():  # the usual case: byte offsets are character offsets, one decode
        text = data.decode("ascii")
        items = [text[start:end] for start, end in zip(starts, ends, strict=True)]
    else:
        items = _decoded_whole(data, starts, ends) or [
            data[start:end].decode("utf-8", "surrogatepass")
            for start, end in zip(starts, ends, strict=True)
        ]
    out = np.empty(len(ends), dtype=object)
    if any(missing):
        out[:] = [None if gone else item for item, gone in zip(items, missing, strict=True)]
    else:
        out[:] = items
    return out


def _decoded_whole(data: bytes, starts: list[int], ends: list[int]) -> list[str] | None:
    """UTF-8 texts joined in one blob, decoded in one go: a character's offset is its byte's
    less the continuation bytes (0b10xxxxxx) before it. None where that would not give what
    decoding each text alone gives: the blob does not decode, or a text starts inside a
    character (only a damaged or crafted file has either)."""
    raw = np.frombuffer(data, np.uint8)
    continuation = (raw & 0xC0) == 0x80
    bounds, last = np.array(starts, np.int64), np.array(ends, np.int64)
    if np.any((last < 0) | (last > len(raw))) or np.any(continuation[bounds[bounds < len(raw)]]):
        return None
    try:
        text = data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
    before = np.r_[0, np.cumsum(continuation, dtype=np.int64)]
    char_starts = (bounds - before[bounds]).tolist()
    char_ends = (last - before[last]).tolist()
    return [text[start:end] for start, end in zip(char_starts, char_ends, strict=True)]


def _encode_frame(frame: pd.DataFrame, arrays: Sink) -> Layout:
    """A frame with a RangeIndex and numeric or categorical-text columns (what the reader's
    batches are)."""
    if (
        not isinstance(frame.index, pd.RangeIndex)
        or frame.index.start != 0
        or frame.index.step != 1
    ):
        raise TypeError("a day summary holds frames with a plain RangeIndex only")
    columns = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories = column.cat.categories
            columns.append(
                {
                    "name": name,
                    "t": "category",
                    "codes": _encode_array(column.cat.codes.to_numpy(), arrays),
                    "categories": _encode_texts(categories.to_numpy(dtype=object), arrays),
                    "categories_dtype": str(categories.dtype),
                    "ordered": bool(column.cat.ordered),
                }
            )
        else:
            columns.append(
                {"name": name, "t": "values", "values": _encode_array(column.to_numpy(), arrays)}
            )
    return {
        "t": "frame",
        "rows": len(frame),
        "columns": columns,
        "columns_dtype": str(frame.columns.dtype),
    }


def _decode_frame(layout: Layout, arrays: Mapping[str, npt.NDArray[Any]]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for column in layout["columns"]:
        if column["t"] == "category":
            codes = arrays[column["codes"]["key"]]
            texts = _decode_texts(column["categories"], arrays)
            categories = pd.Index(list(texts), dtype=_category_dtype(column["categories_dtype"]))
            dtype = pd.CategoricalDtype(categories, ordered=column["ordered"])
            data[column["name"]] = pd.Categorical.from_codes(codes, dtype=dtype)
        elif column["t"] == "values":
            data[column["name"]] = arrays[column["values"]["key"]]
        else:
            raise CodecError(f"unknown column kind {column['t']!r}")
    names = pd.Index(
        [column["name"] for column in layout["columns"]],
        dtype=pd.api.types.pandas_dtype(layout["columns_dtype"]),
    )
    if any(len(values) != layout["rows"] for values in data.values()):
        raise CodecError("columns of different lengths")
    frame = pd.DataFrame(data, index=pd.RangeIndex(layout["rows"]))
    frame.columns = names
    return frame


_LEAVES: dict[str, Callable[[Layout, Mapping[str, npt.NDArray[Any]]], Any]] = {
    "none": lambda layout, arrays: None,
    "array": lambda layout, arrays: arrays[layout["key"]],
    "texts": _decode_texts,
    "coded texts": _decode_coded_texts,
    "joined texts": _decode_joined,
    "frame": _decode_frame,
}


# The categories' dtypes this codec writes (pandas' text dtype, or plain objects): any other
# name, such as one that needs pyarrow, is a file this version did not write.
_CATEGORY_DTYPES = frozenset({"str", "object"})


def _category_dtype(name: object) -> Any:
    if name not in _CATEGORY_DTYPES:
        raise CodecError(f"categories of dtype {name!r}")
    return pd.api.types.pandas_dtype(str(name))


def array_keys(layout: Any) -> list[str]:
    """Every array key a layout names, at any depth."""
    found: list[str] = []
    pending = [layout]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in _KEY_FIELDS:
                    found.append(str(value))
                elif isinstance(value, dict | list):
                    pending.append(value)
        elif isinstance(item, list):
            pending.extend(item)
    return found


# The layout fields that name an array: an array's "key", a text column's three, the codes
# (indices) of coded texts, the blob of joined texts.
_KEY_FIELDS = frozenset({"key", "blob", "ends", "missing", "indices", "joined"})
