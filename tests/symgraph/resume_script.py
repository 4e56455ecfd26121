"""One training run in a process of its own, for the exact-resume test in test_train.py.

    python resume_script.py MODE CHECKPOINT OUT

MODE ``full`` trains 6 epochs without interruption; ``killed`` kills its own
process (SIGKILL, as ``kill -9``) after two batches of epoch 4; ``resume``
continues from CHECKPOINT. ``killed`` and ``resume`` run the same call,
``sg.fit(..., checkpoint=ck, resume=True)``, as a training script run twice
would. The model has Adam's state, BatchNorm's running statistics and a
Dropout key. The final leaves go to OUT (``sg.save_params``), the history to
OUT + ".json".
"""

import json
import os
import signal
import sys

import numpy as np

import codegen
import symgraph as sg
from symgraph import nn

EPOCHS, BATCH_SIZE, KILLED_IN = 6, 16, 4


def build():
    x = sg.placeholder("x", ("batch", 5))
    y = sg.placeholder("y", ("batch",), dtype="int64")
    model = nn.Sequential([
        nn.Dense(16, activation=sg.relu, init=sg.init.glorot_uniform(seed=1)),
        nn.BatchNorm(),
        nn.Dropout(0.3, seed=2),
        nn.Dense(3, init=sg.init.glorot_uniform(seed=3)),
    ])
    loss = sg.softmax_cross_entropy(model(x, training=True), y)
    updates = {**sg.optim.Adam(0.01).updates(loss, model.parameters), **model.state_updates}
    step = codegen.compile([x, y], loss, updates=updates)
    return step, sg.parameters_of([loss, *updates.values()], trainable=None)


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 5))
    return X, (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1)


def killed_in_epoch(step, epoch: int, batches_per_epoch: int):
    calls = []

    def dying(*batch):
        calls.append(1)
        if len(calls) == (epoch - 1) * batches_per_epoch + 3:  # two batches of `epoch` done
            os.kill(os.getpid(), signal.SIGKILL)
        return step(*batch)

    return dying


def main(mode: str, checkpoint: str, out: str):
    step, leaves = build()
    X, Y = data()
    if mode == "full":
        history = sg.fit(step, (X, Y), EPOCHS, BATCH_SIZE, seed=7, progress=False)
    else:
        if mode == "killed":
            step = killed_in_epoch(step, KILLED_IN, -(-len(X) // BATCH_SIZE))
        history = sg.fit(step, (X, Y), EPOCHS, BATCH_SIZE, seed=7, progress=False,
                         checkpoint=sg.Checkpoint(checkpoint, leaves), resume=True)
    sg.save_params(leaves, out)
    with open(out + ".json", "w") as f:
        json.dump(history, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
