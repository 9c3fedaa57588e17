"""events.jsonl: the writer appends whole flushed lines; the tail returns only complete new lines."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from seqtui.engine.events import EventTail, EventWriter, iter_events_reversed, read_events


def test_emit_writes_one_versioned_line_per_event(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        w.emit("start", run="r", step=0)
        w.emit("progress", step=np.int64(3), loss=np.float32(1.5), norms=np.arange(3.0))
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert first["v"] == 1 and first["type"] == "start" and first["run"] == "r"
    assert isinstance(first["time"], float)
    assert second["step"] == 3 and second["loss"] == 1.5 and second["norms"] == [0.0, 1.0, 2.0]


def test_non_finite_floats_become_null_so_the_file_stays_strict_json(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        event = w.emit("progress", loss=float("nan"), ppl=math.inf, grad=np.float64("-inf"))
    assert event["loss"] is None and event["ppl"] is None and event["grad"] is None
    raw = path.read_text()
    assert "NaN" not in raw and "Infinity" not in raw


def test_unserializable_field_is_refused(tmp_path):
    with EventWriter(tmp_path / "e.jsonl") as w, pytest.raises(TypeError):
        w.emit("progress", thing=object())


def test_listeners_see_each_event(tmp_path):
    seen = []
    with EventWriter(tmp_path / "e.jsonl", listeners=[seen.append]) as w:
        w.emit("val", step=1, ppl=2.0)
    assert [e["type"] for e in seen] == ["val"] and seen[0]["ppl"] == 2.0


def test_writer_appends_to_an_existing_file(tmp_path):
    path = tmp_path / "e.jsonl"
    with EventWriter(path) as w:
        w.emit("start", step=0)
    with EventWriter(path) as w:
        w.emit("start", step=5)
    assert [e["step"] for e in read_events(path)] == [0, 5]


def test_tail_returns_only_new_complete_lines(tmp_path):
    path = tmp_path / "e.jsonl"
    tail = EventTail(path)
    assert tail.poll() == []  # missing file
    with open(path, "wb") as f:
        f.write(b'{"v":1,"type":"a","time":1}\n{"v":1,"type":"b","ti')
        f.flush()
        assert [e["type"] for e in tail.poll()] == ["a"]
        assert tail.poll() == []
        f.write(b'me":2}\n')
        f.flush()
        assert [e["type"] for e in tail.poll()] == ["b"]
        f.write(b'garbage line\n{"v":1,"type":"c","time":3}\n')
        f.flush()
        assert [e["type"] for e in tail.poll()] == ["c"]


def test_tail_restarts_when_the_file_is_replaced(tmp_path):
    path = tmp_path / "e.jsonl"
    with EventWriter(path) as w:
        for i in range(5):
            w.emit("progress", step=i)
    tail = EventTail(path)
    assert len(tail.poll()) == 5
    path.unlink()
    with EventWriter(path) as w:
        w.emit("start", step=0)
    assert [e["type"] for e in tail.poll()] == ["start"]


def test_tail_with_byte_limit_eventually_reads_everything(tmp_path):
    path = tmp_path / "e.jsonl"
    with EventWriter(path) as w:
        for i in range(50):
            w.emit("progress", step=i)
    tail, got = EventTail(path), []
    for _ in range(1000):
        batch = tail.poll(max_bytes=37)
        got += batch
        if len(got) == 50:
            break
    assert [e["step"] for e in got] == list(range(50))


@pytest.mark.parametrize("block", [7, 64, 1 << 16])
def test_reverse_iteration_matches_forward_and_skips_a_torn_last_line(tmp_path, block):
    path = tmp_path / "e.jsonl"
    with EventWriter(path) as w:
        for i in range(40):
            w.emit("progress", step=i, text="x" * (i % 13))
    with open(path, "ab") as f:
        f.write(b'{"v":1,"type":"progress","step":99')  # a writer killed mid-line
    forward = [e["step"] for e in read_events(path)]
    backward = [e["step"] for e in iter_events_reversed(path, block=block)]
    assert forward == list(range(40))
    assert backward == forward[::-1]


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = tmp_path / "e.jsonl"
    code = (
        "import sys; from seqtui.engine.events import EventWriter\n"
        "w = EventWriter(sys.argv[1])\n"
        "for i in range(300): w.emit('progress', who=sys.argv[2], step=i, pad='y' * 200)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), tag]) for tag in "ab"]
    assert all(p.wait(60) == 0 for p in procs)
    events = read_events(path)
    assert len(events) == 600 == len(path.read_text().splitlines())
    for tag in "ab":
        assert [e["step"] for e in events if e["who"] == tag] == list(range(300))


def test_importing_the_engine_event_and_run_modules_stays_light():
    code = (
        "import sys, seqtui.engine.events, seqtui.engine.runs, seqtui.engine.config\n"
        "print(sorted(m for m in ('numba', 'numpy', 'textual') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_engine_never_imports_textual():
    code = (
        "import sys, seqtui.engine.trainer, seqtui.engine.loading, seqtui.engine.checkpoint\n"
        "import seqtui.engine.evaluate, seqtui.cli.train, seqtui.cli.runs\n"
        "print('textual' in sys.modules, 'numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_schema_is_checked_by_strict_writers_and_documented(tmp_path):
    from pathlib import Path

    from seqtui.engine.events import SCHEMA, schema_markdown

    with EventWriter(tmp_path / "e.jsonl", strict=True) as w:
        w.emit("val", step=1, ppl=2.0, tokens=10)
        with pytest.raises(ValueError, match="missing"):
            w.emit("val", step=1)
        with pytest.raises(ValueError, match="unknown"):
            w.emit("val", step=1, ppl=2.0, colour="red")
        with pytest.raises(ValueError, match="unknown event type"):
            w.emit("party")
    doc = (Path(__file__).resolve().parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert schema_markdown() in doc, "regenerate the events table: python -c 'from seqtui.engine.events import schema_markdown; print(schema_markdown())'"
    assert set(SCHEMA) >= {"start", "progress", "val", "end"}
