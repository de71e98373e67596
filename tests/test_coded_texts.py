"""Arrays of texts in a day summary (distinct texts and a code per item), the records'
interning of a batch's command lines, and the fold's plain updates where no index repeats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthetic import generate_dumps
from utils.parser import PROCESS_PREFIX, TimeWindow, find_sources
from utils.read.snapshot_specs import PROCESS_SPEC
from utils.read.threaded_reader import Reader
from utils.reduce import process_records
from utils.reduce.process_records import ProcessRecords, _intern, _interned
from utils.reduce.summary_codec import CodecError, Sink, decode, encode

words = st.lists(
    st.none() | st.sampled_from(["", "a", "b c", "caf\u00e9", "\ud800", "\udc80x", "d\0"]),
    max_size=12,
)


def _texts(items: list[Any]) -> np.ndarray[Any, Any]:
    return np.array([*items, "x"], dtype=object)[:-1]


@given(words)
def test_texts_come_back_item_for_item_with_none_for_missing(items: list[str | None]) -> None:
    sink = Sink()
    layout = encode(_texts(items), sink)
    assert layout["t"] == "coded texts"
    back = decode(layout, sink.arrays, {})
    assert back.dtype == object and list(back) == items


def test_repeated_texts_are_stored_once() -> None:
    sink = Sink()
    layout = encode(_texts(["/bin/sh", "/bin/sh", None, "nginx", "/bin/sh"]), sink)
    assert list(decode(layout["texts"], sink.arrays, {})) == ["/bin/sh", "nginx"]
    assert sink.arrays[layout["indices"]].tolist() == [0, 0, -1, 1, 0]


@pytest.mark.parametrize("codes", [[0, 2], [-2, 0], [0.0, 1.0]])
def test_codes_outside_their_texts_are_refused_not_misread(codes: list[float]) -> None:
    sink = Sink()
    layout = encode(_texts(["a", "b"]), sink)
    dtype = np.float64 if isinstance(codes[0], float) else np.int32
    sink.arrays[layout["indices"]] = np.array(codes, dtype)
    with pytest.raises(CodecError):
        decode(layout, sink.arrays, {})


@given(st.lists(words, max_size=4))
def test_interning_a_batch_at_once_gives_the_codes_of_one_text_at_a_time(
    batches: list[list[str | None]],
) -> None:
    one_texts: list[str] = []
    one_codes: dict[str, int] = {}
    many_texts: list[str] = []
    many_codes: dict[str, int] = {}
    for items in batches:
        want = [_intern(one_texts, one_codes, str(item)) for item in items]
        got = _interned(many_texts, many_codes, _texts(items))
        assert got.tolist() == want
    assert many_texts == one_texts


def test_texts_that_hold_a_nul_come_back_too() -> None:
    sink = Sink()
    items = ["a\0b", "c", None, "a\0b", ""]
    layout = encode(_texts(items), sink)
    assert layout["texts"]["t"] == "texts"
    assert list(decode(layout, sink.arrays, {})) == items


@pytest.mark.parametrize("count", [0, 1, 3, True, "2"])
def test_joined_texts_not_as_many_as_their_count_are_refused(count: object) -> None:
    sink = Sink()
    layout = encode(_texts(["a", "b"]), sink)
    assert layout["texts"]["t"] == "joined texts"
    layout["texts"]["count"] = count
    with pytest.raises(CodecError):
        decode(layout, sink.arrays, {})


def test_an_empty_array_of_texts_comes_back_empty() -> None:
    sink = Sink()
    back = decode(encode(_texts([]), sink), sink.arrays, {})
    assert back.dtype == object and len(back) == 0


def _folded(batches: list[Any]) -> list[list[int]]:
    records = ProcessRecords(None, 3)
    for batch in batches:
        records.add(records.reduce(batch))
    table = records.instances()
    floors = records.floors()
    totals = records.group_totals()
    return [
        *(column.tolist() for column in table),
        *(column.tolist() for column in floors),
        totals.most_processes.tolist(),
        totals.processes.tolist(),
        totals.foot_count.tolist(),
    ]


def test_a_batch_whose_pids_have_several_runs_folds_as_with_every_update_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_dumps(tmp_path, snapshots=12, processes=30, seed=5)
    batches = list(
        Reader(PROCESS_SPEC, lambda path, reason: None, batch_bytes=12_000).batches(
            find_sources(tmp_path, PROCESS_PREFIX, TimeWindow())
        )
    )
    assert len(batches) > 1
    # Every third PID misses its batch's second snapshot: two runs of one instance.
    thinned = []
    for batch in batches:
        second = np.unique(batch.snapshot)[1:2]
        pid = batch.frame["PID"].to_numpy()
        gone = np.isin(batch.snapshot, second) & (pid % 3 == 0)
        frame = batch.frame[~gone].reset_index(drop=True)
        thinned.append(batch._replace(frame=frame, snapshot=batch.snapshot[~gone]))
    runs = ProcessRecords().reduce(thinned[0])
    assert len(runs.read) > 2 and np.any(runs.pid[1:] == runs.pid[:-1])
    want = _folded(thinned)
    monkeypatch.setattr(process_records, "_fold_unique", process_records._fold_at)
    assert _folded(thinned) == want
    assert _folded(batches) == _folded(batches)  # the batches as read fold alike too
