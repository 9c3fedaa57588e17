"""Checkpoints: atomic writes (a crash never loses the previous one), strict validated loading."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from seqtui.models.charmodel import ModelConfig, parameter_shapes
import pytest

from seqtui.engine import checkpoint as ck
from seqtui.errors import CheckpointError

ITOS = ["<unk>", " ", "e", "t", "a", "o", "n"]


def FakeVocab(itos, is_char=True):
    from seqtui.data.vocab import Vocab

    return Vocab(itos, is_char=is_char)


def make_meta(cell="gru", hidden=4, layers=2, step=0, itos=ITOS, dtype="float32"):
    return {
        "config": {"cell": cell, "hidden": hidden, "layers": layers, "dtype": dtype},
        "vocab_size": len(itos), "vocab": {"version": 1, "kind": "char", "itos": list(itos)},
        "step": step, "rng": {"bit_generator": "PCG64", "state": {"state": 2**100 + 7, "inc": 3}},
    }


def make_tensors(meta, fill=None, seed=0):
    rng = np.random.default_rng(seed)
    c = meta["config"]
    shapes = parameter_shapes(ModelConfig(c["cell"], meta["vocab_size"], c["hidden"], c["layers"]))
    return {n: (np.full(s, fill) if fill is not None else rng.standard_normal(s)).astype(c["dtype"])
            for n, s in shapes}


def test_round_trip_keeps_tensors_metadata_and_extras(tmp_path):
    meta = make_meta(step=12)
    tensors = make_tensors(meta)
    extra = {"optim.m": np.arange(5, dtype=np.float32), "train.state": np.ones((1, 2, 3, 4), np.float32)}
    path = ck.save_checkpoint(tmp_path / "checkpoints", "latest", tensors, meta, extra=extra)
    assert path == tmp_path / "checkpoints" / "latest.safetensors"
    got, got_meta = ck.load_checkpoint(path)
    assert set(got) == set(tensors)
    for name in tensors:
        np.testing.assert_array_equal(got[name], tensors[name])
    assert got_meta["step"] == 12 and got_meta["kind"] == "latest" and got_meta["format"] == 1
    assert got_meta["rng"]["state"]["state"] == 2**100 + 7  # big ints survive JSON
    np.testing.assert_array_equal(got_meta["extra_tensors"]["optim.m"], extra["optim.m"])
    assert got_meta["extra_tensors"]["train.state"].shape == (1, 2, 3, 4)
    mirror = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())
    assert mirror["step"] == 12 and mirror["vocab"]["itos"] == ITOS
    assert ck.read_checkpoint_meta(path)["step"] == 12
    assert ck.load_checkpoint(tmp_path / "checkpoints" / "latest.json")[1]["step"] == 12


def test_pytorch_names_and_shapes():
    shapes = dict(parameter_shapes(ModelConfig("lstm", vocab_size=10, hidden=3, num_layers=2)))
    assert shapes["rnn.weight_ih_l0"] == (12, 10) and shapes["rnn.weight_ih_l1"] == (12, 3)
    assert shapes["rnn.weight_hh_l1"] == (12, 3) and shapes["rnn.bias_hh_l0"] == (12,)
    assert shapes["fc.weight"] == (10, 3) and shapes["fc.bias"] == (10,)
    assert len(shapes) == 10


def _save_step(directory, step):
    meta = make_meta(step=step)
    ck.save_checkpoint(directory, "latest", make_tensors(meta, fill=float(step)), meta)


def test_crash_between_temp_write_and_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    d = tmp_path / "ck"
    _save_step(d, 1)

    def crash(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(ck.os, "replace", crash)
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*Input/output error"):
        _save_step(d, 2)
    monkeypatch.undo()
    tensors, meta = ck.load_checkpoint(d / "latest.safetensors")
    assert meta["step"] == 1 and float(tensors["fc.bias"][0]) == 1.0
    assert not list(d.glob(".*tmp*"))


def test_a_full_disk_is_a_one_line_error_and_loses_nothing(tmp_path, monkeypatch):
    d = tmp_path / "ck"
    _save_step(d, 1)
    real_write = os.write

    def full(fd, data):
        if len(data) > 100:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(ck.os, "write", full)
    with pytest.raises(CheckpointError, match="No space left on device") as info:
        _save_step(d, 2)
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    assert ck.load_checkpoint(d / "latest.safetensors")[1]["step"] == 1


SAVER = r"""
import sys
sys.path.insert(0, sys.argv[2])
from test_checkpoint import _save_step
step = 0
while True:
    step += 1
    _save_step(sys.argv[1], step)
    print(step, flush=True)
"""


def test_kill_9_mid_save_never_leaves_a_broken_checkpoint(tmp_path):
    d = tmp_path / "ck"
    _save_step(d, 0)
    tests_dir = os.path.dirname(__file__)
    rng = np.random.default_rng(0)
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(d), tests_dir],
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one save completed: we are in the save loop
        time.sleep(float(rng.uniform(0.0, 0.05)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        tensors, meta = ck.load_checkpoint(d / "latest.safetensors")
        step = meta["step"]
        assert step >= 1
        for arr in tensors.values():  # the arrays belong to the step the metadata names
            assert np.all(arr == step)
    _save_step(d, 99)  # the next save cleans up temp files of the killed writers
    assert not list(d.glob(".latest.safetensors.tmp-*"))


def test_truncated_and_garbage_files_are_refused(tmp_path):
    d = tmp_path / "ck"
    _save_step(d, 3)
    good = (d / "latest.safetensors").read_bytes()
    bad = tmp_path / "bad.safetensors"
    for cut in (0, 5, 8, 40, len(good) // 2, len(good) - 1):
        bad.write_bytes(good[:cut])
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            ck.load_checkpoint(bad)
    bad.write_bytes(b"\xff" * 8 + b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        ck.load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        ck.load_checkpoint(tmp_path / "missing.safetensors")


def test_a_plain_safetensors_file_without_our_metadata_is_refused(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"fc.bias": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(CheckpointError, match="no seqtui metadata"):
        ck.load_checkpoint(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.pop("rnn.bias_hh_l1"), "missing tensor 'rnn.bias_hh_l1'"),
    (lambda t: t.__setitem__("rnn.weight_ih_l2", np.zeros((12, 4), np.float32)), "unexpected tensor"),
    (lambda t: t.__setitem__("fc.weight", np.zeros((7, 5), np.float32)), r"fc.weight has shape \(7, 5\)"),
    (lambda t: t.__setitem__("fc.bias", np.zeros(7, np.float64)), "dtype float64, expected float32"),
    (lambda t: t.__setitem__("fc.bias", np.full(7, np.nan, np.float32)), "NaN"),
])
def test_wrong_names_shapes_and_dtypes_are_refused(tmp_path, mutate, message):
    meta = make_meta()
    tensors = make_tensors(meta)
    mutate(tensors)
    ck.save_checkpoint(tmp_path, "latest", tensors, meta)
    with pytest.raises(CheckpointError, match=message):
        ck.load_checkpoint(tmp_path / "latest.safetensors")


def test_config_that_disagrees_with_the_tensors_is_refused(tmp_path):
    meta = make_meta(hidden=4)
    tensors = make_tensors(meta)
    meta["config"]["hidden"] = 5
    ck.save_checkpoint(tmp_path, "best", tensors, meta)
    with pytest.raises(CheckpointError, match="shape"):
        ck.load_checkpoint(tmp_path / "best.safetensors")


def test_unexpected_tensor_prefix_is_refused_on_save_and_load(tmp_path):
    meta = make_meta()
    with pytest.raises(ValueError):
        ck.save_checkpoint(tmp_path, "latest", make_tensors(meta), meta, extra={"evil": np.zeros(1)})
    from safetensors.numpy import save_file

    tensors = dict(make_tensors(meta), evil=np.zeros(1, np.float32))
    meta.update(format=1)
    save_file(tensors, str(tmp_path / "x.safetensors"), metadata={"seqtui": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="unexpected tensor 'evil'"):
        ck.load_checkpoint(tmp_path / "x.safetensors")


def test_a_checkpoint_from_another_vocabulary_is_a_clear_error(tmp_path):
    meta = make_meta()
    ck.save_checkpoint(tmp_path, "latest", make_tensors(meta), meta)
    _, meta = ck.load_checkpoint(tmp_path / "latest.safetensors")
    ck.check_vocab(meta, FakeVocab(ITOS))  # the same vocabulary passes
    with pytest.raises(CheckpointError, match="different vocabulary"):
        ck.check_vocab(meta, FakeVocab(ITOS[:-1] + ["z"]))
    with pytest.raises(CheckpointError, match="different vocabulary"):
        ck.check_vocab(meta, FakeVocab(ITOS, is_char=False))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_torch_load_state_dict_accepts_the_model_tensors(tmp_path, cell):
    torch = pytest.importorskip("torch")
    from safetensors.numpy import load_file

    meta = make_meta(cell=cell, hidden=5, layers=2)
    tensors = make_tensors(meta)
    ck.save_checkpoint(tmp_path, "latest", tensors, meta, extra={"optim.v": np.ones(3, np.float32)})
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    model = torch.nn.Module()
    model.rnn = cls(len(ITOS), 5, num_layers=2)
    model.fc = torch.nn.Linear(5, len(ITOS))
    raw = load_file(str(tmp_path / "latest.safetensors"))
    sd = {k: torch.from_numpy(v) for k, v in raw.items() if k.startswith(("rnn.", "fc."))}
    model.load_state_dict(sd)  # strict: every name and shape matches
    np.testing.assert_array_equal(model.fc.weight.detach().numpy(), tensors["fc.weight"])


# -- issue 13 (hardening) ---------------------------------------------------------------------
def test_a_checkpoint_that_is_a_device_fifo_or_loop_is_refused_without_reading(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.safetensors")
    os.symlink("/dev/zero", tmp_path / "zero.safetensors")
    os.symlink(tmp_path / "loop.safetensors", tmp_path / "loop.safetensors")
    for name, words in (("fifo", "FIFO"), ("zero", "device"), ("loop", "symlink loop")):
        for reader in (ck.load_checkpoint, ck.read_checkpoint_meta):
            with pytest.raises(CheckpointError, match=words):
                reader(tmp_path / f"{name}.safetensors")


def test_a_checkpoint_with_trailing_garbage_is_refused(tmp_path):
    _save_step(tmp_path / "ck", 3)
    path = tmp_path / "ck" / "latest.safetensors"
    path.write_bytes(path.read_bytes() + b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        ck.load_checkpoint(path)


def test_vocabularies_their_tokenization_cannot_produce_are_refused():
    from seqtui.data.vocab import Vocab

    ok = {"version": 1, "kind": "char", "itos": ["<unk>", "a", "\x1b", "\n"], "reserved": []}
    assert len(Vocab.from_json(ok)) == 4  # a char corpus may hold control characters
    for itos, kind, words in ((["<unk>", "ab"], "char", "2 characters"),
                              (["<unk>", "\ud800"], "char", "surrogate"),
                              (["<unk>", "a b"], "word", "whitespace"),
                              (["<unk>", ""], "word", "empty"),
                              (["<unk>", "x\x1b[2J"], "word", "control")):
        with pytest.raises(CheckpointError, match=words):
            Vocab.from_json({"version": 1, "kind": kind, "itos": itos, "reserved": []})
