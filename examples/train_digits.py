"""Handwritten digits: train a small network, then read the code that trained it.

scikit-learn ships 1797 handwritten digits as 8x8 grey images (no download
needed). This script teaches a multilayer perceptron to read them:

    64 pixels -> Dense(128) -> BatchNorm -> ReLU -> Dropout(0.2)
              -> Dense(64)  -> ReLU      -> Dropout(0.2)
              -> Dense(10)  -> one logit per digit

The story, in the order the script runs it:

1. Data. A seeded, stratified split keeps a quarter of the images aside for
   testing. Each training image is also shown shifted by one pixel up, down,
   left and right (data augmentation: a digit moved by a pixel is the same
   digit). Pixels are standardized with the training set's statistics.
2. Model. ``sg.nn`` layers build graph nodes; the same model is called twice,
   ``training=True`` (batch statistics, random dropout masks) and
   ``training=False`` (running statistics, no dropout).
3. Compile. The training graph, its gradient and Adam's update rule (with a
   cosine learning-rate schedule) become ONE generated NumPy function,
   ``train_step``: forward, backward and the in-place update of every weight
   and every piece of optimizer and batch-norm state. The evaluation graph
   becomes a second function, ``predict``.
4. Train. ``sg.fit`` shuffles mini-batches every epoch, reports the loss, the
   test accuracy and the throughput, and checkpoints the weights atomically.
5. Read. The script prints the generated code and saves the training curve,
   the generated modules and the checkpoint.

Run it from the repository root (needs the ``examples`` extra: scikit-learn
and matplotlib):

    python examples/train_digits.py [--epochs N] [--seed S] [--out DIR] [--quiet]
"""

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np

import codegen
import symgraph as sg

BATCH_SIZE = 32
LEARNING_RATE = 1e-2  # Adam's peak rate; a cosine schedule takes it to 0 by the last step
WEIGHT_DECAY = 1e-3  # L2 penalty on the weight matrices
DROPOUT = 0.2


def require_examples_extra():
    """Exit with a hint, not a traceback, when scikit-learn or matplotlib is missing."""
    import importlib.util

    missing = [m for m in ("sklearn", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"{Path(__file__).name} needs scikit-learn and matplotlib (missing: {', '.join(missing)}); "
                 f"install them with:  pip install -e \".[examples]\"")


# -- 1. data ------------------------------------------------------------------------------


def shift(images, dy, dx):
    """Move every 8x8 image by (dy, dx) pixels, filling the uncovered border with 0 (background)."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    return padded[:, 1 - dy : 9 - dy, 1 - dx : 9 - dx]


def load_data(seed):
    """(x_train, y_train, x_test, y_test): augmented, standardized training rows; untouched test rows."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()  # bundled with scikit-learn: 1797 images, pixel values 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.25, stratify=digits.target, random_state=seed
    )
    # Augmentation: the original images and four copies shifted by one pixel.
    moves = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
    x_train = np.concatenate([shift(x_train, dy, dx) for dy, dx in moves]).reshape(-1, 64)
    y_train = np.tile(y_train, len(moves))
    x_test = x_test.reshape(-1, 64)
    # Standardize each pixel with the training statistics (a pixel that is always 0 keeps scale 1).
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    return (x_train - mean) / std, y_train.astype(np.int64), (x_test - mean) / std, y_test.astype(np.int64)


# -- 2. model -----------------------------------------------------------------------------


def build_model(seed):
    """The MLP as sg.nn layers; weights drawn from seeded initializers (He for ReLU layers)."""
    return sg.nn.Sequential([
        sg.nn.Dense(128, init=sg.init.he_normal(seed=seed)),
        sg.nn.BatchNorm(),
        sg.relu,
        sg.nn.Dropout(DROPOUT, seed=seed),
        sg.nn.Dense(64, activation=sg.relu, init=sg.init.he_normal(seed=seed + 1)),
        sg.nn.Dropout(DROPOUT, seed=seed + 1),  # each dropout layer its own seed, so their masks differ
        sg.nn.Dense(10, init=sg.init.glorot_uniform(seed=seed + 2)),
    ])


# -- 5. reading and saving ------------------------------------------------------------------


def excerpt(source, param):
    """The generated function's body, abridged: from ``# forward`` to the gradient of ``param``
    (in reverse mode the first layer's weights get theirs last, so this is the whole backward pass),
    then, after a count of the lines left out (the optimizer's arithmetic), how ``param`` and its
    optimizer state are written back, and the return. The saved file has every line."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "# forward"), None)
    grad = [i for i, line in enumerate(lines) if re.match(rf"\s*grad_{re.escape(param)}\s*=", line)]
    if start is None or not grad or grad[-1] < start:  # an unexpected layout: show the beginning
        return "\n".join(lines[:60] + [f"    # ... {max(0, len(lines) - 60)} more lines"])
    stop = grad[-1] + 1
    written = rf"\s*{re.escape(param)}(_\w+)?(\[\.\.\.\])?\s*[-+*/]?=\s"  # param or its state, assigned in place
    writes = [line for line in lines[stop:-1] if re.match(written, line)]
    hidden = len(lines) - stop - len(writes) - 1
    return "\n".join(lines[start:stop] + [f"    # ... {hidden} lines left out: the optimizer's update of every "
                                           f"parameter and state, then the writes back, such as:"]
                      + writes + lines[-1:])


def body(source):
    """The generated function's body, from ``# forward`` on."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "# forward"), 0)
    return "\n".join(lines[start:])


def save_curve(path, history, accuracy_goal=0.97):
    """Two panels: the training loss and the test accuracy, per epoch."""
    import matplotlib

    matplotlib.use("Agg")  # draw to a file; no display needed
    import matplotlib.pyplot as plt

    epochs = history["epoch"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, history["loss"], "o-", color="tab:blue")
    left.set_title("training loss (cross-entropy + weight decay)")
    left.set_xlabel("epoch")
    left.set_ylabel("mean loss per sample")
    left.grid(alpha=0.3)
    right.plot(epochs, [100 * a for a in history["eval"]], "o-", color="tab:green", label="test accuracy")
    right.axhline(100 * accuracy_goal, color="gray", linestyle="--", label=f"{100 * accuracy_goal:.0f}% goal")
    right.set_title(f"test accuracy (final {100 * history['eval'][-1]:.1f}%)")
    right.set_xlabel("epoch")
    right.set_ylabel("% of test digits right")
    right.set_ylim(max(0, 100 * min(history["eval"]) - 2), 100)
    right.legend(loc="lower right")
    right.grid(alpha=0.3)
    for ax in (left, right):
        ax.set_xticks(epochs)
    fig.suptitle("symgraph: an MLP on scikit-learn's 8x8 digits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training set (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the split, the weights, dropout and shuffling")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="directory for the plot, the generated modules and the checkpoint "
                             "(default: examples/out/)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines and no generated code")
    args = parser.parse_args(argv)
    require_examples_extra()
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. Data.
    x_train, y_train, x_test, y_test = load_data(args.seed)
    print(f"data: {len(x_train) // 5} training images (x5 with one-pixel shifts = {len(x_train)} rows), "
          f"{len(x_test)} test images, 8x8 pixels, 10 classes")

    # 2. Model: one definition, two graphs. The batch dimension is a name, so any batch size fits.
    x = sg.placeholder("x", shape=("batch", 64))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")  # the digit, 0..9
    model = build_model(args.seed)
    logits = model(x, training=True).named("logits")
    eval_logits = model(x, training=False)
    weights = [layer.W for layer in model.layers if isinstance(layer, sg.nn.Dense)]
    cross_entropy = sg.softmax_cross_entropy(logits, y).named("cross_entropy")
    cost = (cross_entropy + sg.regularize.l2_penalty(weights, WEIGHT_DECAY)).named("cost")
    print("model:")
    for layer in model.layers:
        print(f"    {layer!r}" if isinstance(layer, sg.nn.Layer) else f"    {layer.__name__}")
    print(f"    {sum(p.value.size for p in model.parameters):,} trainable numbers in {len(model.parameters)} "
          f"parameters; {len(model.state)} state leaves (batch-norm running statistics, dropout keys)")

    # 3. Compile. Adam's updates and the model's state updates go into one generated function.
    steps_per_epoch = -(-len(x_train) // BATCH_SIZE)
    schedule = sg.schedules.cosine(LEARNING_RATE, total_steps=args.epochs * steps_per_epoch)
    optimizer = sg.optim.Adam(schedule)
    updates = {**optimizer.updates(cost, model.parameters), **model.state_updates}
    tic = time.perf_counter()
    train_step = codegen.compile([x, y], cost, updates=updates, name="train_step")
    predict = codegen.compile([x], eval_logits, name="predict")
    print(f"compiled train_step ({len(train_step.source.splitlines())} lines of NumPy: forward, backward and "
          f"{len(updates)} in-place updates) and predict ({len(predict.source.splitlines())} lines) "
          f"in {time.perf_counter() - tic:.2f}s")

    def test_accuracy():
        return float(np.mean(np.argmax(predict(x_test), axis=1) == y_test))

    # 4. Train. Every leaf (weights, running statistics, dropout keys, Adam's moments and step
    # counter) goes into the checkpoint, so a run could be resumed from it.
    checkpoint = sg.Checkpoint(args.out / "digits_checkpoint.npz", model.leaves + optimizer.state)
    print(f"\ntraining: Adam, cosine schedule from {LEARNING_RATE:g}, batches of {BATCH_SIZE}, "
          f"{args.epochs} epochs ('eval' is the test accuracy)")
    tic = time.perf_counter()
    history = sg.fit(train_step, (x_train, y_train), epochs=args.epochs, batch_size=BATCH_SIZE, seed=args.seed,
                     eval_fn=test_accuracy, checkpoint=checkpoint, progress=not args.quiet, stream=sys.stdout)
    fit_seconds = time.perf_counter() - tic

    accuracy = test_accuracy()
    throughput = float(np.median(history["samples_per_sec"]))
    print(f"\ntest accuracy: {accuracy:.4f} ({round(accuracy * len(y_test))} of {len(y_test)} test digits)")
    print(f"training time: {fit_seconds:.2f}s for {args.epochs} epochs "
          f"({sum(history['time']):.2f}s in train_step calls, the rest evaluation and checkpoints)")
    print(f"throughput: {throughput:,.0f} samples/s per epoch (median; "
          f"min {min(history['samples_per_sec']):,.0f}, max {max(history['samples_per_sec']):,.0f})")

    # The checkpoint round-trips: wipe the weights, load it, and the accuracy is back.
    for leaf in model.parameters:
        leaf.value = np.zeros_like(leaf.value)
    wiped = test_accuracy()
    sg.load_params(model.leaves, checkpoint.path)
    print(f"checkpoint: weights wiped -> test accuracy {wiped:.4f}; "
          f"reloaded from {checkpoint.path.name} -> {test_accuracy():.4f}")

    # 5. Read and save.
    if not args.quiet:
        print("\n== The generated training step (train_step.source, abridged) ==")
        print(excerpt(train_step.source, model.parameters[0].name))
        print("\n== The same model in evaluation mode (predict.source): running statistics, no dropout ==")
        print(body(predict.source))
    curve = save_curve(args.out / "digits_training_curve.png", history)
    step_file = train_step.save(args.out / "digits_train_step.py")
    predict_file = predict.save(args.out / "digits_predict.py")
    print()
    print(f"saved training curve: {curve}")
    print(f"saved train step: {step_file}")
    print(f"saved predict: {predict_file}")
    print(f"saved checkpoint: {checkpoint.path}")
    print(f"wall time: {time.perf_counter() - started:.2f}s")
    return accuracy


if __name__ == "__main__":
    main()
