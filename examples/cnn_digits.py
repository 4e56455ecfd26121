"""Handwritten digits with a convolutional network: the images stay images.

train_digits.py flattens each 8x8 digit into 64 numbers; this script keeps the
grid, as an N×1×8×8 batch, and lets small 3x3 filters slide over it:

    1×8×8 -> Conv2d(16, 3×3, padding 1) -> ReLU -> MaxPool2d(2)   16×4×4
          -> Conv2d(32, 3×3, padding 1) -> ReLU -> MaxPool2d(2)   32×2×2
          -> Flatten -> Dense(64) -> ReLU -> Dropout(0.25) -> Dense(10)

The same steps as train_digits.py: a seeded, stratified split (a quarter of the
images for testing), the training images also shown shifted by one pixel in the
four directions, pixels scaled by the training set's statistics; Adam with a
cosine schedule; ``sg.fit`` calls ONE generated NumPy function per mini-batch
(forward with im2col convolutions and max pooling, backward through them, and
the in-place update of every weight and every Adam moment). The script prints
the generated convolution lines, saves the training curve and the generated
module.

Run it from the repository root (needs the ``examples`` extra: scikit-learn
and matplotlib):

    python examples/cnn_digits.py [--epochs N] [--seed S] [--subset N] [--blas-threads N] [--out DIR] [--quiet]

The matrix products of this network are small (a batch of 32), so the script runs BLAS on one
thread: a second one does not make them faster, and when another process holds a core, OpenBLAS's
threads wait on each other and a step takes many times longer (on a busy 2-core machine, 96 s
instead of 13 s for the default run). ``--blas-threads 0`` keeps the library's default.
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
EPOCHS = 12
LEARNING_RATE = 3e-3  # Adam's peak rate; a cosine schedule takes it to 0 by the last step
WEIGHT_DECAY = 1e-3  # L2 penalty on the kernels and the weight matrices
DROPOUT = 0.25


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


def load_data(seed, subset=None):
    """(x_train, y_train, x_test, y_test), images as N×1×8×8 float32: augmented, scaled training
    images; untouched test images. ``subset``: keep only the first that many training images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()  # bundled with scikit-learn: 1797 images, pixel values 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.25, stratify=digits.target, random_state=seed
    )
    if subset:
        x_train, y_train = x_train[:subset], y_train[:subset]
    # Augmentation: the original images and four copies shifted by one pixel.
    moves = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
    x_train = np.concatenate([shift(x_train, dy, dx) for dy, dx in moves])
    y_train = np.tile(y_train, len(moves))
    # One scale for the whole image (a convolution shares its filter over every pixel, so the
    # pixels are not standardized one by one): zero mean, unit variance over the training set.
    mean, std = x_train.mean(), x_train.std()

    def prepare(images):
        return ((images - mean) / std).astype(np.float32)[:, None, :, :]  # N×1×8×8: one channel

    return prepare(x_train), y_train.astype(np.int64), prepare(x_test), y_test.astype(np.int64)


# -- 2. model -----------------------------------------------------------------------------


def build_model(seed):
    """The CNN as sg.nn layers; weights drawn from seeded He initializers (ReLU layers)."""
    return sg.nn.Sequential([
        sg.nn.Conv2d(16, 3, padding=1, init=sg.init.he_normal(seed=seed)),
        sg.relu,
        sg.nn.MaxPool2d(2),
        sg.nn.Conv2d(32, 3, padding=1, init=sg.init.he_normal(seed=seed + 1)),
        sg.relu,
        sg.nn.MaxPool2d(2),
        sg.nn.Flatten(),
        sg.nn.Dense(64, activation=sg.relu, init=sg.init.he_normal(seed=seed + 2)),
        sg.nn.Dropout(DROPOUT, seed=seed),
        sg.nn.Dense(10, init=sg.init.glorot_uniform(seed=seed + 3)),
    ])


# -- 5. reading and saving ------------------------------------------------------------------


def conv_lines(source):
    """The generated lines that call the convolution and pooling helpers: the forward ones, then the backward ones."""
    calls = r"_(conv\w*|max_pool2d\w*)\("
    lines = source.splitlines()
    body = next((i for i, line in enumerate(lines) if line.strip() == "# forward"), 0)
    backward = next((i for i, line in enumerate(lines) if line.strip() == "# backward"), len(lines))
    forward = [line for line in lines[body:backward] if re.search(calls, line)]
    back = [line for line in lines[backward:] if re.search(calls, line)]
    return "\n".join(forward + ["    # backward"] + back)


def save_curve(path, history, accuracy_goal=0.985):
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
    right.axhline(100 * accuracy_goal, color="gray", linestyle="--", label=f"{100 * accuracy_goal:.1f}% goal")
    right.set_title(f"test accuracy (final {100 * history['eval'][-1]:.1f}%)")
    right.set_xlabel("epoch")
    right.set_ylabel("% of test digits right")
    right.set_ylim(max(0, 100 * min(history["eval"]) - 2), 100)
    right.legend(loc="lower right")
    right.grid(alpha=0.3)
    for ax in (left, right):
        ax.set_xticks(epochs)
    fig.suptitle("symgraph: a CNN on scikit-learn's 8x8 digits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"passes over the training set (default: {EPOCHS})")
    parser.add_argument("--seed", type=int, default=0, help="seeds the split, the weights, dropout and shuffling")
    parser.add_argument("--subset", type=int, default=None,
                        help="train on only this many training images (before augmentation; for quick runs)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="directory for the plot and the generated module (default: examples/out/)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="threads for the BLAS matrix products (default: 1; 0: the library's default)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines and no generated code")
    args = parser.parse_args(argv)
    require_examples_extra()
    from threadpoolctl import threadpool_limits  # (installed with scikit-learn)

    if args.blas_threads:
        with threadpool_limits(args.blas_threads, user_api="blas"):
            return run(args)
    return run(args)


def run(args):
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. Data.
    x_train, y_train, x_test, y_test = load_data(args.seed, args.subset)
    print(f"data: {len(x_train) // 5} training images (x5 with one-pixel shifts = {len(x_train)} images), "
          f"{len(x_test)} test images, 1×8×8 pixels, 10 classes")

    # 2. Model: one definition, two graphs (training: random dropout masks; evaluation: none).
    x = sg.placeholder("x", shape=("batch", 1, 8, 8), dtype="float32")
    y = sg.placeholder("y", shape=("batch",), dtype="int64")  # the digit, 0..9
    model = build_model(args.seed)
    logits = model(x, training=True).named("logits")
    eval_logits = model(x, training=False)
    weights = [layer.W for layer in model.layers if isinstance(layer, (sg.nn.Conv2d, sg.nn.Dense))]
    cross_entropy = sg.softmax_cross_entropy(logits, y).named("cross_entropy")
    cost = (cross_entropy + sg.regularize.l2_penalty(weights, WEIGHT_DECAY)).named("cost")
    print("model:")
    for layer in model.layers:
        print(f"    {layer!r}" if isinstance(layer, sg.nn.Layer) else f"    {layer.__name__}")
    print(f"    {sum(p.value.size for p in model.parameters):,} trainable numbers in {len(model.parameters)} "
          f"parameters")

    # 3. Compile: forward, backward and Adam's updates in one generated function.
    steps_per_epoch = -(-len(x_train) // BATCH_SIZE)
    schedule = sg.schedules.cosine(LEARNING_RATE, total_steps=args.epochs * steps_per_epoch)
    optimizer = sg.optim.Adam(schedule)
    updates = {**optimizer.updates(cost, model.parameters), **model.state_updates}
    tic = time.perf_counter()
    train_step = codegen.compile([x, y], cost, updates=updates, name="train_step")
    predict = codegen.compile([x], eval_logits, name="predict")
    print(f"compiled train_step ({len(train_step.source.splitlines())} lines of NumPy) and predict "
          f"({len(predict.source.splitlines())} lines) in {time.perf_counter() - tic:.2f}s")

    def test_accuracy():
        return float(np.mean(np.argmax(predict(x_test), axis=1) == y_test))

    # 4. Train.
    print(f"\ntraining: Adam, cosine schedule from {LEARNING_RATE:g}, batches of {BATCH_SIZE}, "
          f"{args.epochs} epochs ('eval' is the test accuracy)")
    tic = time.perf_counter()
    history = sg.fit(train_step, (x_train, y_train), epochs=args.epochs, batch_size=BATCH_SIZE, seed=args.seed,
                     eval_fn=test_accuracy, progress=not args.quiet, stream=sys.stdout)
    fit_seconds = time.perf_counter() - tic

    accuracy = test_accuracy()
    throughput = float(np.median(history["samples_per_sec"]))
    print(f"\ntest accuracy: {accuracy:.4f} ({round(accuracy * len(y_test))} of {len(y_test)} test digits)")
    print(f"training time: {fit_seconds:.2f}s for {args.epochs} epochs "
          f"({sum(history['time']):.2f}s in train_step calls, the rest evaluation)")
    print(f"throughput: {throughput:,.0f} samples/s per epoch (median)")

    # 5. Read and save.
    if not args.quiet:
        print("\n== The generated convolution and pooling lines (train_step.source, abridged) ==")
        print(conv_lines(train_step.source))
    curve = save_curve(args.out / "cnn_training_curve.png", history)
    step_file = train_step.save(args.out / "cnn_train_step.py")
    print()
    print(f"saved training curve: {curve}")
    print(f"saved train step: {step_file}")
    print(f"wall time: {time.perf_counter() - started:.2f}s")
    return accuracy


if __name__ == "__main__":
    main()
