"""The training loop and checkpoints: fit, save_params, load_params.

Contract: DESIGN.md section A ("Training"); issue 5, item 6.
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import codegen
import symgraph as sg
import symgraph.train as train
from symgraph.train import Checkpoint, fit, load_params, save_params

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python(*args):
    """Run Python in a new process that imports this checkout's symgraph."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)

# -- helpers ------------------------------------------------------------------------


class Recorder:
    """A fake step: records the batches it is given and returns a fixed loss."""

    def __init__(self, loss=1.0):
        self.batches = []
        self.loss = loss

    def __call__(self, *batch):
        self.batches.append([np.array(b) for b in batch])
        return self.loss(batch) if callable(self.loss) else self.loss


def epochs_of(rec, n):
    """The sample ids each epoch saw, in order (the first data array holds the ids)."""
    ids = np.concatenate([b[0] for b in rec.batches])
    return ids.reshape(-1, n)


def tiny_model(rng):
    """Softmax regression, 4 features, 3 classes; returns (step, W, b, data)."""
    x = sg.placeholder("x", shape=("batch", 4))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W = sg.parameter("W", value=rng.normal(size=(4, 3)) * 0.1)
    b = sg.parameter("b", value=np.zeros(3))
    loss = sg.softmax_cross_entropy(x @ W + b, y)
    gW, gb = sg.grad(loss, [W, b])
    step = codegen.compile([x, y], loss, updates={W: W - 0.5 * gW, b: b - 0.5 * gb})
    X = rng.normal(size=(50, 4))
    Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    return step, W, b, (X, Y)


def leaves_for_checkpoint():
    W = sg.parameter("W", value=np.arange(6.0).reshape(2, 3))
    h = sg.parameter("h", value=np.arange(4, dtype=np.float32), trainable=False)
    k = sg.state("count", np.array(7, dtype=np.int64))
    return [W, h, k]


def snapshot(leaves):
    return [(leaf.value.copy(), leaf.value.dtype) for leaf in leaves]


def assert_unchanged(leaves, before):
    for leaf, (value, dtype) in zip(leaves, before):
        assert leaf.value.dtype == dtype
        np.testing.assert_array_equal(leaf.value, value)


# -- mini-batches and shuffling ------------------------------------------------------


def test_each_sample_once_per_epoch_in_batches_of_batch_size():
    rec = Recorder()
    ids = np.arange(10)
    fit(rec, (ids, ids * 10.0), epochs=3, batch_size=4, seed=0, progress=False)
    assert [len(b[0]) for b in rec.batches] == [4, 4, 2] * 3
    for b in rec.batches:  # arrays stay aligned row by row
        np.testing.assert_array_equal(b[1], b[0] * 10.0)
    for order in epochs_of(rec, 10):
        assert sorted(order) == list(range(10))


def test_shuffle_changes_order_every_epoch_and_is_seeded():
    ids = np.arange(40)
    runs = []
    for seed in (3, 3, 4):
        rec = Recorder()
        fit(rec, (ids,), epochs=3, batch_size=8, seed=seed, progress=False)
        runs.append(epochs_of(rec, 40))
    a, same, other = runs
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    assert not np.array_equal(a[0], ids)
    np.testing.assert_array_equal(a, same)
    assert not np.array_equal(a, other)


def test_no_shuffle_keeps_order():
    rec = Recorder()
    ids = np.arange(7)
    fit(rec, (ids,), epochs=2, batch_size=3, shuffle=False, progress=False)
    np.testing.assert_array_equal(epochs_of(rec, 7), [ids, ids])


def test_single_array_data_and_batch_larger_than_data():
    rec = Recorder()
    fit(rec, np.arange(5), epochs=1, batch_size=100, progress=False)
    assert len(rec.batches) == 1 and len(rec.batches[0]) == 1 and len(rec.batches[0][0]) == 5


@pytest.mark.parametrize("data, msg", [
    ((np.zeros(5), np.zeros(4)), "different lengths"),
    ((np.zeros((0, 2)),), "no samples"),
    ((np.float64(1.0),), "scalar"),
])
def test_bad_data_is_a_clear_error(data, msg):
    with pytest.raises(ValueError, match=msg):
        fit(Recorder(), data, epochs=1, batch_size=2, progress=False)


@pytest.mark.parametrize("kw", [{"epochs": -1}, {"batch_size": 0}, {"batch_size": 2.5}])
def test_bad_epochs_or_batch_size(kw):
    args = {"epochs": 1, "batch_size": 2, **kw}
    with pytest.raises(ValueError, match=next(iter(kw))):
        fit(Recorder(), (np.zeros(4),), progress=False, **args)


# -- history -----------------------------------------------------------------------


def test_history_loss_is_weighted_by_batch_size():
    # loss of a batch = mean of its ids, so the epoch mean must be the mean of all ids
    rec = Recorder(loss=lambda batch: np.float64(batch[0].mean()))
    ids = np.arange(10.0)
    h = fit(rec, (ids,), epochs=2, batch_size=4, seed=1, progress=False)
    assert set(h) == {"epoch", "loss", "time", "samples_per_sec"}
    assert h["epoch"] == [1, 2]
    np.testing.assert_allclose(h["loss"], [4.5, 4.5])
    assert all(t > 0 for t in h["time"]) and all(r > 0 for r in h["samples_per_sec"])
    np.testing.assert_allclose(np.array(h["samples_per_sec"]) * h["time"], 10)


@pytest.mark.parametrize("ret", [
    lambda b: [np.float64(2.0), np.zeros(3)],          # a list starting with the loss
    lambda b: (np.array(2.0),),                         # a tuple
    lambda b: np.full(len(b[0]), 2.0),                  # per-sample losses
    lambda b: 2.0,                                      # a Python float
])
def test_step_results_that_carry_a_loss(ret):
    h = fit(Recorder(loss=ret), (np.arange(5),), epochs=1, batch_size=2, progress=False)
    assert h["loss"] == [2.0]


def test_step_returning_none_is_an_error():
    with pytest.raises(ValueError, match="must return the loss"):
        fit(lambda x: None, (np.arange(5),), epochs=1, batch_size=2, progress=False)


def test_eval_fn_called_after_each_epoch():
    calls = []
    rec = Recorder()

    def evaluate():
        calls.append(len(rec.batches))  # batches run so far
        return np.float32(0.25 * len(calls))

    h = fit(rec, (np.arange(6),), epochs=4, batch_size=3, eval_fn=evaluate, progress=False)
    assert calls == [2, 4, 6, 8]
    assert h["eval"] == [0.25, 0.5, 0.75, 1.0] and all(type(v) is float for v in h["eval"])


def test_zero_epochs_gives_empty_history():
    h = fit(Recorder(), (np.arange(3),), epochs=0, batch_size=2, eval_fn=lambda: 1.0, progress=False)
    assert h == {"epoch": [], "loss": [], "time": [], "samples_per_sec": [], "eval": []}


# -- a real model ------------------------------------------------------------------


def test_fit_reproducible_with_seed_on_a_compiled_model(rng):
    step, W, b, data = tiny_model(rng)
    W0, b0 = W.value.copy(), b.value.copy()
    results = []
    for seed in (7, 7, 8):
        W.value, b.value = W0, b0
        h = fit(step, data, epochs=5, batch_size=8, seed=seed, progress=False)
        results.append((W.value.copy(), b.value.copy(), h["loss"]))
    (Wa, ba, la), (Wb, bb, lb), (Wc, _, _) = results
    np.testing.assert_array_equal(Wa, Wb)
    np.testing.assert_array_equal(ba, bb)
    assert la == lb
    assert not np.array_equal(Wa, Wc)  # the seed does matter
    assert la[-1] < la[0]  # and it trains


def test_fit_with_eval_and_checkpoint_on_a_compiled_model(rng, tmp_path, monkeypatch):
    step, W, b, (X, Y) = tiny_model(rng)
    path = tmp_path / "model.npz"
    saved = []

    def accuracy():
        return float(np.mean(np.argmax(X @ W.value + b.value, axis=1) == Y))

    def counting_write(leaves, p, record, what):
        saved.append(len(accuracy_calls))
        return real_write(leaves, p, record, what)

    accuracy_calls = []
    real_write = train._write
    monkeypatch.setattr(train, "_write", counting_write)
    h = fit(step, (X, Y), epochs=5, batch_size=10, seed=0, progress=False,
            eval_fn=lambda: accuracy_calls.append(1) or accuracy(),
            checkpoint=Checkpoint(path, [W, b], every=2))
    assert saved == [2, 4, 5]  # after epochs 2, 4 and the last one, each after its evaluation
    assert h["eval"][-1] > 0.7
    trained = W.value.copy(), b.value.copy()
    W.value, b.value = np.zeros((4, 3)), np.zeros(3)
    load_params([W, b], path)
    np.testing.assert_array_equal(W.value, trained[0])
    np.testing.assert_array_equal(b.value, trained[1])


def test_checkpoint_as_tuple(tmp_path):
    W = sg.parameter("W", value=np.ones(2))
    path = tmp_path / "c.npz"
    fit(lambda x: 0.0, (np.arange(3),), epochs=1, batch_size=2, progress=False, checkpoint=(path, [W]))
    with np.load(path) as f:
        np.testing.assert_array_equal(f["W"], np.ones(2))


# -- progress output ---------------------------------------------------------------


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


LINE = re.compile(r"epoch +\d+/\d+  loss \d+\.\d{4}(  eval \d+\.\d{4})?  \d+\.\d\ds  [\d,]+ samples/s")


def test_progress_to_a_file_is_one_line_per_epoch():
    out = io.StringIO()
    fit(Recorder(0.5), (np.arange(20),), epochs=3, batch_size=4, eval_fn=lambda: 0.875, stream=out)
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 3 and text.endswith("\n")
    for i, line in enumerate(lines, 1):
        assert LINE.fullmatch(line), line
        assert line.startswith(f"epoch {i}/3  loss 0.5000  eval 0.8750  ")


def test_progress_on_a_tty_redraws_one_line_in_place():
    out = FakeTTY()
    fit(Recorder(0.25), (np.arange(10),), epochs=12, batch_size=3, stream=out)
    text = out.getvalue()
    lines = text.split("\n")
    assert len(lines) == 13 and lines[-1] == ""  # one finished line per epoch
    for i, line in enumerate(lines[:-1], 1):
        frames = line.split("\r")
        assert frames[0] == ""  # every draw starts with a carriage return
        assert "[====================] 10/10" in frames[-2]  # the bar reached the end
        final = frames[-1].rstrip(" ")
        assert LINE.fullmatch(final), final
        assert final.startswith(f"epoch {i:>2}/12  loss 0.2500")
        assert len(frames[-1]) >= len(frames[-2])  # padded over the longer bar line


def test_progress_goes_to_stderr_by_default_and_can_be_silenced(capsys):
    fit(Recorder(), (np.arange(4),), epochs=2, batch_size=2)
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 2
    fit(Recorder(), (np.arange(4),), epochs=2, batch_size=2, progress=False)
    assert capsys.readouterr() == ("", "")


def test_interrupted_epoch_on_a_tty_ends_the_line():
    out = FakeTTY()

    def step(x):
        if x[0] >= 4:
            raise KeyboardInterrupt
        return 1.0

    with pytest.raises(KeyboardInterrupt):
        fit(step, (np.arange(8),), epochs=1, batch_size=2, shuffle=False, stream=out)
    assert out.getvalue().startswith("\repoch 1/1 [") and out.getvalue().endswith("\n")


# -- checkpoints -------------------------------------------------------------------


def test_checkpoint_round_trips_values_and_dtypes_exactly(tmp_path):
    leaves = leaves_for_checkpoint()
    leaves[0].value = np.random.default_rng(1).normal(size=(2, 3))
    path = tmp_path / "ckpt.npz"
    assert save_params(leaves, path) == str(path)
    before = snapshot(leaves)
    for leaf in leaves:
        leaf.value = np.zeros_like(leaf.value)
    load_params(leaves, path)
    assert_unchanged(leaves, before)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)


def test_names_that_clash_with_savez_keywords_round_trip(tmp_path):
    leaves = [sg.parameter(n, value=np.full(2, i)) for i, n in enumerate(["file", "allow_pickle", "a/b", "x.npy"])]
    save_params(leaves, tmp_path / "c.npz")
    for leaf in leaves:
        leaf.value = np.zeros(2)
    load_params(leaves, tmp_path / "c.npz")
    assert [leaf.value[0] for leaf in leaves] == [0, 1, 2, 3]


def test_model_like_object_and_duplicates(tmp_path):
    class Model:
        def __init__(self):
            self.parameters = [sg.parameter("W", value=np.ones(2))]
            self.bn = sg.state("running_mean", np.zeros(2))

        def state(self):
            return [self.bn, self.bn]  # the same leaf twice is fine

    m = Model()
    save_params(m, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        assert sorted(f.files) == ["W", "running_mean"]
    with pytest.raises(ValueError, match="two different leaves are named 'W'"):
        save_params([m.parameters[0], sg.parameter("W", value=np.ones(1))], tmp_path / "d.npz")
    assert not (tmp_path / "d.npz").exists()
    with pytest.raises(TypeError, match="parameter and state leaves"):
        save_params([sg.placeholder("x", shape=(2,))], tmp_path / "d.npz")


def test_extra_arrays_are_allowed_unless_strict(tmp_path):
    leaves = leaves_for_checkpoint()
    save_params(leaves, tmp_path / "c.npz")
    load_params(leaves[:1], tmp_path / "c.npz")
    with pytest.raises(ValueError, match="no given leaf: count, h"):
        load_params(leaves[:1], tmp_path / "c.npz", strict=True)


def test_float64_checkpoint_loads_into_float32_leaf(tmp_path):
    a = sg.parameter("a", value=np.array([0.5, 1.5]))
    save_params([a], tmp_path / "c.npz")
    b = sg.parameter("a", value=np.zeros(2, dtype=np.float32), dtype="float32")
    load_params([b], tmp_path / "c.npz")
    assert b.value.dtype == np.float32 and list(b.value) == [0.5, 1.5]


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(os.urandom(64) + b"not an npz at all")


def _flipped_bytes(path):  # a valid zip directory, but member data damaged: CRC mismatch
    data = bytearray(path.read_bytes())
    at = data.index(b"\x93NUMPY") + 200
    data[at : at + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


def _empty(path):
    path.write_bytes(b"")


def _single_npy(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


def _pickled_object_array(path):
    with zipfile.ZipFile(path, "w") as zf, zf.open("W.npy", "w") as member:
        np.lib.format.write_array(member, np.array([{"a": 1}], dtype=object), allow_pickle=True)


@pytest.mark.parametrize("damage, msg", [
    (_truncated, "not a readable .npz checkpoint"),
    (_garbage, "not a readable .npz checkpoint"),
    (_flipped_bytes, "not a readable .npz checkpoint"),
    (_empty, "not a readable .npz checkpoint"),
    (_single_npy, "single .npy array"),
    (_pickled_object_array, "not a readable .npz checkpoint"),
    (lambda p: p.unlink(), "does not exist"),
])
def test_bad_file_raises_and_changes_nothing(tmp_path, damage, msg):
    leaves = leaves_for_checkpoint()
    path = tmp_path / "ckpt.npz"
    save_params(leaves, path)
    damage(path)
    for leaf in leaves:
        leaf.value = np.ones_like(leaf.value)
    before = snapshot(leaves)
    with pytest.raises(ValueError, match=msg) as info:
        load_params(leaves, path)
    assert str(path) in str(info.value)
    assert_unchanged(leaves, before)


@pytest.mark.parametrize("other, msg", [
    ({"W": np.zeros((2, 3)), "h": np.zeros(4, np.float32)}, "no array for leaf 'count'"),
    ({"W": np.zeros((3, 2)), "h": np.zeros(4, np.float32), "count": np.array(1)}, "leaf 'W' has shape"),
    ({"W": np.zeros((2, 3)), "h": np.zeros(4, np.float32), "count": np.array(1.5)}, "leaf 'count' is int64"),
])
def test_mismatched_file_raises_and_changes_nothing(tmp_path, other, msg):
    leaves = leaves_for_checkpoint()
    path = tmp_path / "ckpt.npz"
    np.savez(path, **other)  # W comes first, so a late failure would show a half-done load
    before = snapshot(leaves)
    with pytest.raises(ValueError, match=msg) as info:
        load_params(leaves, path)
    assert str(path) in str(info.value)
    assert_unchanged(leaves, before)


def test_save_is_atomic_when_the_rename_fails(tmp_path, monkeypatch):
    leaves = leaves_for_checkpoint()
    path = tmp_path / "ckpt.npz"
    save_params(leaves, path)
    old = path.read_bytes()
    leaves[0].value = np.full((2, 3), 99.0)

    def broken_replace(src, dst):
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk pulled out"):
        save_params(leaves, path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    leaves = leaves_for_checkpoint()
    path = tmp_path / "ckpt.npz"
    save_params(leaves, path)
    old = path.read_bytes()
    calls = []

    def failing_write(fp, array, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted halfway through
        return real_write(fp, array, **kw)

    real_write = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(KeyboardInterrupt):
        save_params(leaves, path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    monkeypatch.undo()
    load_params(leaves, path)


# -- exact resume (issue 11, defect 5) ------------------------------------------------------

RESUME_SCRIPT = os.path.join(os.path.dirname(__file__), "resume_script.py")


def _run_script(mode, checkpoint, out):
    return python(RESUME_SCRIPT, mode, checkpoint, out)


def _final(out):
    with zipfile.ZipFile(out) as zf:
        leaves = {name: zf.read(name) for name in zf.namelist()}  # exact bytes, dtype and shape headers included
    with open(f"{out}.json") as f:
        return leaves, json.load(f)


@pytest.mark.skipif(os.name != "posix", reason="kills a process with SIGKILL")
def test_a_run_killed_in_epoch_4_and_resumed_in_a_new_process_ends_bit_identical(tmp_path):
    full = _run_script("full", tmp_path / "unused.npz", tmp_path / "full.npz")
    assert full.returncode == 0, full.stderr
    killed = _run_script("killed", tmp_path / "ckpt.npz", tmp_path / "killed.npz")
    assert killed.returncode == -signal.SIGKILL and not (tmp_path / "killed.npz").exists()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz", "full.npz", "full.npz.json"]  # the checkpoint of epoch 3
    resumed = _run_script("resume", tmp_path / "ckpt.npz", tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr

    (full_leaves, full_history), (resumed_leaves, resumed_history) = _final(tmp_path / "full.npz"), _final(
        tmp_path / "resumed.npz")
    assert {"dense1_W.npy", "dense1_W_m.npy", "step.npy", "batchnorm1_running_var.npy",
            "dropout1_key.npy"} <= set(full_leaves)
    assert resumed_leaves == full_leaves  # bit for bit: parameters, Adam's moments and step, statistics, key
    assert resumed_history["resumed_from"] == 3 and resumed_history["epoch"] == [4, 5, 6]
    assert resumed_history["loss"] == full_history["loss"][3:]
    with zipfile.ZipFile(tmp_path / "ckpt.npz") as zf:
        assert json.loads(zf.read("symgraph-fit.json"))["epochs_done"] == 6


def _interrupted_at(epoch, n, batch_size):
    """A Recorder that raises KeyboardInterrupt on the second batch of ``epoch``."""
    rec = Recorder()
    batches = -(-n // batch_size)

    def step(*batch):
        if len(rec.batches) == (epoch - 1) * batches + 1:
            raise KeyboardInterrupt
        return rec(*batch)

    return rec, step


def test_resume_continues_the_shuffling_and_runs_only_the_remaining_epochs(tmp_path):
    ids, W = np.arange(20), sg.parameter("W", value=np.zeros(2))
    whole = Recorder()
    fit(whole, (ids,), epochs=6, batch_size=8, seed=3, progress=False)
    rec, step = _interrupted_at(5, 20, 8)
    ck = Checkpoint(tmp_path / "c.npz", [W], every=2)
    with pytest.raises(KeyboardInterrupt):
        fit(step, (ids,), epochs=6, batch_size=8, seed=3, progress=False, checkpoint=ck, resume=True)
    again = Recorder()
    out = io.StringIO()
    h = fit(again, (ids,), epochs=6, batch_size=8, seed=99, checkpoint=ck, resume=True, stream=out)  # seed: restored
    np.testing.assert_array_equal(epochs_of(again, 20), epochs_of(whole, 20)[4:])  # epochs 5 and 6, same orders
    assert h["resumed_from"] == 4 and h["epoch"] == [5, 6]
    assert out.getvalue().startswith(f"resumed from {ck.path} after epoch 4 of 6: 2 epoch(s) left\n")


def test_resume_without_a_checkpoint_file_starts_from_scratch(tmp_path):
    ids = np.arange(10)
    plain, resumed = Recorder(), Recorder()
    fit(plain, (ids,), epochs=2, batch_size=4, seed=1, progress=False)
    h = fit(resumed, (ids,), epochs=2, batch_size=4, seed=1, progress=False, resume=True,
            checkpoint=(tmp_path / "c.npz", [sg.parameter("W", value=np.zeros(1))]))
    np.testing.assert_array_equal(epochs_of(resumed, 10), epochs_of(plain, 10))
    assert h["resumed_from"] == 0 and h["epoch"] == [1, 2] and (tmp_path / "c.npz").exists()


def test_resume_when_epochs_are_already_reached_trains_nothing(tmp_path):
    W = sg.parameter("W", value=np.zeros(1))
    ck = Checkpoint(tmp_path / "c.npz", [W])
    fit(Recorder(), (np.arange(4),), epochs=3, batch_size=2, progress=False, checkpoint=ck)
    rec, out = Recorder(), io.StringIO()
    h = fit(rec, (np.arange(4),), epochs=3, batch_size=2, eval_fn=lambda: 1.0, checkpoint=ck, resume=True, stream=out)
    assert rec.batches == []
    assert h == {"epoch": [], "loss": [], "time": [], "samples_per_sec": [], "eval": [], "resumed_from": 3}
    assert out.getvalue() == f"resumed from {ck.path} after epoch 3 of 3: nothing left to train\n"
    h = fit(rec, (np.arange(4),), epochs=5, batch_size=2, progress=False, checkpoint=ck, resume=True)
    assert h["epoch"] == [4, 5] and len(rec.batches) == 4  # more epochs asked: only those run


def _checkpoint_of(tmp_path, leaves):
    path = tmp_path / "c.npz"
    fit(Recorder(), (np.arange(4),), epochs=1, batch_size=2, progress=False, checkpoint=(path, leaves))
    return path


@pytest.mark.parametrize("other, msg", [
    (lambda: [sg.parameter("V", value=np.zeros(2))], r"fit\(resume=True\): checkpoint .* has no array for leaf 'V'"),
    (lambda: [sg.parameter("W", value=np.zeros(3))], r"fit\(resume=True\): leaf 'W' has shape \(3,\)"),
    (lambda: [sg.parameter("W", value=np.zeros(2), dtype="int64")], r"fit\(resume=True\): leaf 'W' is int64"),
    (lambda: [sg.parameter("W", value=np.zeros(2)), sg.state("count", 0), sg.parameter("b", value=np.zeros(1))][:1],
     r"fit\(resume=True\): checkpoint .* holds arrays for no given leaf: b, count"),
])
def test_resume_from_another_models_checkpoint_names_the_leaf_and_changes_nothing(tmp_path, other, msg):
    path = _checkpoint_of(tmp_path, [sg.parameter("W", value=np.ones(2)), sg.state("count", 1),
                                     sg.parameter("b", value=np.ones(1))])
    leaves = other()
    before = snapshot(leaves)
    rec = Recorder()
    with pytest.raises(ValueError, match=msg):
        fit(rec, (np.arange(4),), epochs=2, batch_size=2, progress=False, checkpoint=(path, leaves), resume=True)
    assert rec.batches == []
    assert_unchanged(leaves, before)


def test_resume_refuses_checkpoints_it_cannot_continue(tmp_path):
    W = sg.parameter("W", value=np.zeros(2))
    save_params([W], tmp_path / "plain.npz")
    with pytest.raises(ValueError, match=r"fit\(resume=True\): checkpoint .*plain.npz' holds no training progress"):
        fit(Recorder(), (np.arange(4),), epochs=2, batch_size=2, progress=False,
            checkpoint=(tmp_path / "plain.npz", [W]), resume=True)
    path = _checkpoint_of(tmp_path, [W])
    with pytest.raises(ValueError, match=r"written while training on 4 samples, but data holds 6"):
        fit(Recorder(), (np.arange(6),), epochs=2, batch_size=2, progress=False, checkpoint=(path, [W]), resume=True)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("symgraph-fit.json", '{"epochs_done": 1}')  # a second, damaged record, read instead
    with pytest.raises(ValueError, match=r"fit\(resume=True\): checkpoint .* holds an unreadable training record"):
        fit(Recorder(), (np.arange(4),), epochs=2, batch_size=2, progress=False, checkpoint=(path, [W]), resume=True)
    with pytest.raises(ValueError, match=r"fit: resume=True needs a checkpoint"):
        fit(Recorder(), (np.arange(6),), epochs=2, batch_size=2, progress=False, resume=True)


def test_resume_refuses_a_checkpoint_missing_leaves_the_step_updates(rng, tmp_path):
    x = sg.placeholder("x", ("batch", 2))
    W = sg.parameter("W", value=np.ones(2))
    loss = ((x @ W) ** 2).mean()
    opt = sg.optim.Adam(0.1)
    step = codegen.compile([x], loss, updates=opt.updates(loss))
    data = (rng.normal(size=(6, 2)),)
    with pytest.raises(ValueError, match=r"fit: the checkpoint does not hold 'W_m', 'W_v', 'step', which step updates"):
        fit(step, data, epochs=1, batch_size=2, progress=False, checkpoint=(tmp_path / "c.npz", [W]), resume=True)
    assert W.value.tolist() == [1.0, 1.0]
    fit(step, data, epochs=1, batch_size=2, progress=False, checkpoint=(tmp_path / "c.npz", [W, *opt.state]),
        resume=True)
    fit(step, data, epochs=1, batch_size=2, progress=False, checkpoint=(tmp_path / "w.npz", [W]))  # weights only


# -- the checkpoint's directory and temporary files (issue 11, defect 9) ---------------------


@pytest.mark.parametrize("target, breakage, error, msg", [
    ("missing/c.npz", None, FileNotFoundError, r"fit: cannot write checkpoint '.*missing/c.npz': directory '.*missing' "
                                               r"does not exist"),
    ("sub", None, IsADirectoryError, r"fit: cannot write checkpoint '.*sub': it is a directory"),
    ("c.npz", "read-only", PermissionError, r"fit: cannot write checkpoint '.*c.npz': directory '.*' is not writable"),
])
def test_fit_checks_the_checkpoint_directory_before_the_first_epoch(tmp_path, monkeypatch, target, breakage, error,
                                                                    msg):
    (tmp_path / "sub").mkdir()
    if breakage:
        monkeypatch.setattr(os, "access", lambda path, mode: False)  # root may write anywhere: simulate it
    rec = Recorder()
    with pytest.raises(error, match=msg):
        fit(rec, (np.arange(4),), epochs=2, batch_size=2, progress=False,
            checkpoint=Checkpoint(tmp_path / target, [sg.parameter("W", value=np.zeros(1))]))
    assert rec.batches == []
    with pytest.raises(error, match=msg.replace("fit:", "save_params:")):
        save_params([sg.parameter("W", value=np.zeros(1))], tmp_path / target)


def test_checkpoint_leaves_are_checked_before_the_first_epoch(tmp_path):
    rec = Recorder()
    with pytest.raises(ValueError, match="fit: two different leaves are named 'W'"):
        fit(rec, (np.arange(4),), epochs=1, batch_size=2, progress=False,
            checkpoint=(tmp_path / "c.npz", [sg.parameter("W", value=np.zeros(1)), sg.parameter("W", value=1.0)]))
    assert rec.batches == []


@pytest.mark.parametrize("broken", ["fsync", "chmod", "replace"])
def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch, broken):
    leaves = leaves_for_checkpoint()
    path = tmp_path / "ckpt.npz"
    save_params(leaves, path)
    old = path.read_bytes()
    leaves[0].value = np.full((2, 3), 99.0)
    seen = []

    def fail(*args):
        seen.append(os.path.basename(args[0]) if isinstance(args[0], (str, os.PathLike)) else args[0])
        raise OSError(f"{broken} failed")

    monkeypatch.setattr(os, broken, fail)
    with pytest.raises(OSError, match=f"{broken} failed"):
        save_params(leaves, path)
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["ckpt.npz"]
    if broken != "fsync":  # the temporary file's recognizable name: .<target>.symgraph-tmp-<pid>-<random>
        assert re.fullmatch(rf"\.ckpt\.npz\.symgraph-tmp-{os.getpid()}-[a-z0-9_]{{8}}", seen[0]), seen


KILLED_DURING_SAVE = """
import os, signal, sys
import numpy as np
import symgraph as sg
real = np.lib.format.write_array
def dying(*args, **kw):
    real(*args, **kw)
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 halfway through the archive
np.lib.format.write_array = dying
sg.save_params([sg.parameter("W", value=np.ones(1000)), sg.parameter("b", value=np.ones(3))], sys.argv[1])
"""


@pytest.mark.skipif(os.name != "posix", reason="kills a process with SIGKILL")
def test_a_later_save_removes_what_a_killed_save_left(tmp_path):
    path = tmp_path / "ckpt.npz"
    W = sg.parameter("W", value=np.zeros(1000))
    save_params([W], path)
    old = path.read_bytes()
    run = python("-c", KILLED_DURING_SAVE, path)
    assert run.returncode == -signal.SIGKILL
    left = [f for f in os.listdir(tmp_path) if f != "ckpt.npz"]
    assert len(left) == 1 and re.fullmatch(r"\.ckpt\.npz\.symgraph-tmp-\d+-[a-z0-9_]{8}", left[0]), left
    assert path.read_bytes() == old
    live = tmp_path / f".ckpt.npz.symgraph-tmp-{os.getppid()}-abcd1234"  # a save still running in another process
    other = tmp_path / f".other.npz.symgraph-tmp-{left[0].split('-')[2]}-abcd1234"  # another target's
    live.write_bytes(b"")
    other.write_bytes(b"")
    save_params([W], path)
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.npz", live.name, other.name])


# -- checkpoint keys (issue 11, defect 10) ---------------------------------------------------


def test_leaf_names_are_unambiguous_keys(tmp_path):
    names = ["x", "x.npy", "x.npy.npy", "symgraph-fit.json", "symgraph-fit"]
    leaves = [sg.parameter(n, value=np.full(2, float(i))) for i, n in enumerate(names)]
    path = tmp_path / "c.npz"
    fit(Recorder(), (np.arange(4),), epochs=1, batch_size=2, progress=False, checkpoint=(path, leaves))
    for leaf in leaves:
        leaf.value = np.zeros(2)
    load_params(leaves, path, strict=True)
    assert [leaf.value[0] for leaf in leaves] == [0, 1, 2, 3, 4]
    fit(Recorder(), (np.arange(4),), epochs=2, batch_size=2, progress=False, checkpoint=(path, leaves), resume=True)


def test_a_leaf_name_a_zip_archive_cannot_hold_is_refused_at_save_time(tmp_path):
    with pytest.raises(ValueError, match=r"save_params: leaf name 'a\\x00b' cannot be a checkpoint key"):
        save_params([sg.parameter("a\0b", value=np.zeros(1)), sg.parameter("a", value=np.ones(1))], tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def test_load_refuses_values_that_would_change_in_the_leaf_dtype(tmp_path):
    np.savez(tmp_path / "c.npz", h=np.array([1e300, 1.0]))
    h = sg.parameter("h", value=np.zeros(2, np.float32))
    with pytest.raises(sg.DTypeError, match=r"load_params: leaf 'h' from checkpoint .*: value 1e\+300 at index \(0,\) "
                                            r"would become inf in float32"):
        load_params([h], tmp_path / "c.npz")
    assert h.value.tolist() == [0.0, 0.0]
