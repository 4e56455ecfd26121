"""The golden cases: small graphs whose generated source is checked in as ``tests/golden/<case>.py``.

Each case builds its graph in a fresh intern table (so layer numbering starts at 1) from fixed
names and seeds, and returns the compiled function. ``tests/test_golden.py`` compares each
``f.source`` with the checked-in file; ``python tests/golden/regenerate.py`` rewrites the files.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = Path(__file__).resolve().parent
REGENERATE = "python tests/golden/regenerate.py"
if str(ROOT) not in sys.path:  # a fresh checkout, run as a script: symgraph and codegen live at the root
    sys.path.insert(0, str(ROOT))

import codegen  # noqa: E402
import symgraph as sg  # noqa: E402


def example(name):
    """examples/<name>.py as a module (its ``main()`` does not run)."""
    spec = importlib.util.spec_from_file_location(f"golden_example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _xor():
    """examples/xor.py's training graph (tanh units, seed 0, learning rate 0.1)."""
    return example("xor").training_graph()


def xor_train_step():
    x, y, _, loss, updates = _xor()
    return codegen.compile([x, y], loss, updates=updates)


def xor_predict():
    x, _, f, _, _ = _xor()
    return codegen.compile([x], f)


def logistic_regression_train_step(lr=0.5, classes=3):
    """examples/logistic_regression.py's main() builds its model inline; rebuilt here with the same
    names, zero initial weights and default learning rate."""
    x = sg.placeholder("x", shape=("batch", 2))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W = sg.parameter("W", value=np.zeros((2, classes)))
    b = sg.parameter("b", value=np.zeros(classes))
    logits = (x @ W + b).named("logits")
    loss = sg.softmax_cross_entropy(logits, y).named("loss")
    grad_W, grad_b = sg.grad(loss, [W, b])
    return codegen.compile([x, y], loss, updates={W: W - lr * grad_W, b: b - lr * grad_b})


def _digits(seed=0):
    """examples/train_digits.py's main() without data: its build_model() and constants; the cosine
    schedule's length is that of the default run (10 epochs of ceil(1347 * 5 / 32) batches)."""
    digits = example("train_digits")
    x = sg.placeholder("x", shape=("batch", 64))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    model = digits.build_model(seed)
    logits = model(x, training=True).named("logits")
    eval_logits = model(x, training=False)
    weights = [layer.W for layer in model.layers if isinstance(layer, sg.nn.Dense)]
    cross_entropy = sg.softmax_cross_entropy(logits, y).named("cross_entropy")
    cost = (cross_entropy + sg.regularize.l2_penalty(weights, digits.WEIGHT_DECAY)).named("cost")
    schedule = sg.schedules.cosine(digits.LEARNING_RATE, total_steps=10 * -(-1347 * 5 // digits.BATCH_SIZE))
    updates = {**sg.optim.Adam(schedule).updates(cost, model.parameters), **model.state_updates}
    return x, y, cost, eval_logits, updates


def digits_train_step():
    x, y, cost, _, updates = _digits()
    return codegen.compile([x, y], cost, updates=updates, name="train_step")


def digits_predict():
    x, _, _, eval_logits, _ = _digits()
    return codegen.compile([x], eval_logits, name="predict")


def cnn_train_step(seed=0):
    """examples/cnn_digits.py's train step without data: its build_model(), weight decay and Adam with the
    cosine schedule of the default run (12 epochs of ceil(1500 / 32) batches); conv, pooling and their
    gradients, the image columns shared by each conv2d and its weight gradient."""
    cnn = example("cnn_digits")
    x = sg.placeholder("x", shape=("batch", 1, 8, 8), dtype="float32")
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    model = cnn.build_model(seed)
    logits = model(x, training=True).named("logits")
    weights = [layer.W for layer in model.layers if isinstance(layer, (sg.nn.Conv2d, sg.nn.Dense))]
    cross_entropy = sg.softmax_cross_entropy(logits, y).named("cross_entropy")
    cost = (cross_entropy + sg.regularize.l2_penalty(weights, cnn.WEIGHT_DECAY)).named("cost")
    schedule = sg.schedules.cosine(cnn.LEARNING_RATE, total_steps=cnn.EPOCHS * -(-1500 // cnn.BATCH_SIZE))
    updates = {**sg.optim.Adam(schedule).updates(cost, model.parameters), **model.state_updates}
    return codegen.compile([x, y], cost, updates=updates, name="train_step")


def mlp_adam_train_step(seed=0):
    """A 2-layer tanh MLP (4 -> 8 -> 3) on class labels, trained with Adam."""
    rng = np.random.default_rng(seed)
    x = sg.placeholder("x", shape=("batch", 4))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W1 = sg.parameter("W1", value=rng.normal(size=(4, 8)) / 2)
    b1 = sg.parameter("b1", value=np.zeros(8))
    W2 = sg.parameter("W2", value=rng.normal(size=(8, 3)) / np.sqrt(8))
    b2 = sg.parameter("b2", value=np.zeros(3))
    h = sg.tanh(x @ W1 + b1).named("h")
    loss = sg.softmax_cross_entropy((h @ W2 + b2).named("logits"), y).named("loss")
    updates = sg.optim.Adam(1e-3).updates(loss, [W1, b1, W2, b2])
    return codegen.compile([x, y], loss, updates=updates)


def mlp_adam_cupy_train_step(seed=0):
    """mlp_adam_train_step in float32 for the CuPy backend: kernels printed from SymPy, Adam fused."""
    rng = np.random.default_rng(seed)
    x = sg.placeholder("x", shape=("batch", 4), dtype="float32")
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W1 = sg.parameter("W1", value=rng.normal(size=(4, 8)) / 2, dtype="float32")
    b1 = sg.parameter("b1", value=np.zeros(8), dtype="float32")
    W2 = sg.parameter("W2", value=rng.normal(size=(8, 3)) / np.sqrt(8), dtype="float32")
    b2 = sg.parameter("b2", value=np.zeros(3), dtype="float32")
    h = sg.tanh(x @ W1 + b1).named("h")
    loss = sg.softmax_cross_entropy((h @ W2 + b2).named("logits"), y).named("loss")
    updates = sg.optim.Adam(1e-3).updates(loss, [W1, b1, W2, b2])
    return codegen.compile([x, y], loss, updates=updates, backend="cupy")


def tanh_jacobian_forward(seed=0):
    """The (4, 3) Jacobian of y = tanh(x @ W + b) with respect to x, in forward mode."""
    rng = np.random.default_rng(seed)
    x = sg.placeholder("x", shape=(3,))
    W = sg.parameter("W", value=rng.normal(size=(3, 4)))
    b = sg.parameter("b", value=rng.normal(size=4))
    y = sg.tanh(x @ W + b).named("y")
    return codegen.compile([x], sg.jacobian(y, x, mode="forward").named("jacobian"), name="tanh_jacobian")


CASES = {
    case.__name__: case
    for case in [
        xor_predict,
        xor_train_step,
        logistic_regression_train_step,
        digits_train_step,
        digits_predict,
        cnn_train_step,
        mlp_adam_train_step,
        mlp_adam_cupy_train_step,
        tanh_jacobian_forward,
    ]
}


def build(name):
    """The compiled function of one case, built in its own fresh graph."""
    with sg.fresh_graph():
        return CASES[name]()


def golden_path(name):
    return GOLDEN_DIR / f"{name}.py"
