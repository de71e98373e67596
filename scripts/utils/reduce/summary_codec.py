"""What a day summary holds, as plain arrays: a tree of NamedTuples, tuples, numpy arrays,
texts, numbers and data frames flattened into named arrays and a JSON layout, and back.

The arrays are written with numpy's own format (`.npy` members of an `.npz`), never pickled:
a summary is a cache file any user of the host could have put there, and unpickling it would
run whatever it holds. Texts are kept as one UTF-8 blob and the offsets into it
(`surrogatepass`, so that a command line that is not valid UTF-8 comes back as it went in).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

Arrays = dict[str, npt.NDArray[Any]]
Layout = dict[str, Any]


class CodecError(ValueError):
    """A layout that does not describe a value this codec made (another version, or a
    damaged file)."""


def encode(value: object, arrays: Arrays) -> Layout:
    """value's layout; its arrays are added to `arrays` under fresh names."""
    if value is None:
        return {"t": "none"}
    if isinstance(value, bool | int | float | str):
        return {"t": type(value).__name__, "v": value}
    if isinstance(value, np.ndarray):
        return _encode_array(value, arrays)
    if isinstance(value, pd.DataFrame):
        return _encode_frame(value, arrays)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        fields = {
            name: encode(item, arrays) for name, item in zip(value._fields, value, strict=True)
        }
        return {"t": "record", "class": type(value).__name__, "fields": fields}
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
    lazy mapping (an open .npz), so what it does not take is never read."""
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


def _encode_array(value: npt.NDArray[Any], arrays: Arrays) -> Layout:
    if value.dtype == object:
        return _encode_texts(value, arrays)
    key = _fresh(arrays)
    arrays[key] = value
    return {"t": "array", "key": key}


def _encode_texts(values: npt.NDArray[Any] | pd.Index, arrays: Arrays) -> Layout:
    """Texts (None or NaN allowed) as one UTF-8 blob, the end offset of each, and a mask."""
    items = list(values)
    missing = np.array([not isinstance(item, str) for item in items], dtype=bool)
    encoded = [
        b"" if gone else item.encode("utf-8", "surrogatepass")
        for item, gone in zip(items, missing, strict=True)
    ]
    blob, ends, mask = _fresh(arrays), _fresh(arrays, 1), _fresh(arrays, 2)
    arrays[blob] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    arrays[ends] = np.cumsum([len(item) for item in encoded], dtype=np.int64)
    arrays[mask] = missing
    return {"t": "texts", "blob": blob, "ends": ends, "missing": mask}


def _decode_texts(
    layout: Layout, arrays: Mapping[str, npt.NDArray[Any]]
) -> npt.NDArray[np.object_]:
    data = arrays[layout["blob"]].tobytes()
    ends = arrays[layout["ends"]].tolist()
    missing = arrays[layout["missing"]].tolist()
    if len(ends) != len(missing) or (ends and ends[-1] != len(data)):
        raise CodecError("texts whose offsets do not match their blob")
    out = np.empty(len(ends), dtype=object)
    start = 0
    for index, (end, gone) in enumerate(zip(ends, missing, strict=True)):
        out[index] = None if gone else data[start:end].decode("utf-8", "surrogatepass")
        start = end
    return out


def _encode_frame(frame: pd.DataFrame, arrays: Arrays) -> Layout:
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
            categories = pd.Index(
                list(texts), dtype=pd.api.types.pandas_dtype(column["categories_dtype"])
            )
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
    frame = pd.DataFrame(data, index=pd.RangeIndex(layout["rows"]))
    frame.columns = names
    if any(len(frame[name]) != layout["rows"] for name in frame.columns):
        raise CodecError("columns of different lengths")
    return frame


def _fresh(arrays: Arrays, extra: int = 0) -> str:
    return f"a{len(arrays) + extra}"


_LEAVES: dict[str, Callable[[Layout, Mapping[str, npt.NDArray[Any]]], Any]] = {
    "none": lambda layout, arrays: None,
    "array": lambda layout, arrays: arrays[layout["key"]],
    "texts": _decode_texts,
    "frame": _decode_frame,
}
