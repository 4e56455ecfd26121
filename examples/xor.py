"""XOR, the first network of the deep-learning course, written with symgraph.

Goodfellow, Bengio and Courville (Deep Learning, section 6.1) show that one
hidden layer of two rectified linear units computes XOR:

    f(x) = w^T max(0, W^T x + c) + b

This script tells that story in three steps:

1. build the network as a graph and run it with the book's weights, printing the
   slide's intermediate matrices (XW, XW + c, the ReLU) and the outputs;
2. train a network of the same shape from a random start, by full-batch
   gradient descent written as ``updates`` and compiled once into a
   train-step function (first printing the sweeps of one gradient, with values:
   the course's backprop table, from sg.trace);
3. print the NumPy code symgraph generated for that train step.

Run it from the repository root:  python examples/xor.py
"""

import numpy as np

import codegen
import symgraph as sg

# The four XOR points as one batch (one row per point), and their labels.
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0], dtype=np.float64)


def network(x, W, c, w, b, activation):
    """f(x) = w^T act(W^T x + c) + b, for a batch x of shape (batch, 2).

    With one point per row, W^T x becomes x @ W (weights are laid out
    (fan_in, fan_out)) and the bias c broadcasts over the batch.
    """
    hidden = activation(x @ W + c).named("hidden")  # .named: what generated code calls it
    return (hidden @ w + b).named("output")


def classes(outputs):
    """Threshold the network's real-valued outputs at 1/2: the predicted bits."""
    return (np.asarray(outputs) > 0.5).astype(int).tolist()


def confidently_correct(outputs, margin=0.2):
    """Every output is within ``margin`` of its label: right, and not by luck."""
    return bool(np.all(np.abs(outputs - Y) < margin))


def fixed_network():
    """Step 1: the book's hand-picked weights solve XOR exactly."""
    x = sg.placeholder("x", shape=("batch", 2))
    W = sg.parameter("W", value=[[1.0, 1.0], [1.0, 1.0]])
    c = sg.parameter("c", value=[0.0, -1.0])
    w = sg.parameter("w", value=[1.0, -2.0])
    b = sg.parameter("b", value=0.0)
    f = network(x, W, c, w, b, sg.relu)

    # evaluate compiles the graph and runs it once; parameters supply their .value.
    outputs = codegen.evaluate(f, {x: X})
    # The book's walk through the same computation, one matrix per step (one row per point):
    pre = x @ W + c
    steps = codegen.evaluate([x @ W, pre, sg.relu(pre)], {x: X})
    for label, value in zip(["XW", "XW + c", "max(0, XW + c)"], steps):
        print(f"{label}:", value.tolist())
    print("fixed network outputs:", outputs.tolist())
    print("fixed network:", classes(outputs))


def training_graph(hidden_units=4, lr=0.1, seed=0):
    """The network with tanh units, its loss, and gradient descent as updates, from a random start:
    (x, y, output, loss, updates)."""
    rng = np.random.default_rng(seed)
    x = sg.placeholder("x", shape=("batch", 2))
    y = sg.placeholder("y", shape=("batch",))
    W = sg.parameter("W", value=rng.normal(size=(2, hidden_units)))
    c = sg.parameter("c", value=np.zeros(hidden_units))
    w = sg.parameter("w", value=rng.normal(size=hidden_units))
    b = sg.parameter("b", value=0.0)
    params = [W, c, w, b]

    f = network(x, W, c, w, b, sg.tanh)
    loss = sg.mse(f, y).named("loss")  # mean squared error over the batch, as in the book

    # sg.grad returns graph nodes, not numbers: one gradient node per parameter.
    grads = sg.grad(loss, params)

    # Gradient descent is just an update rule per parameter. The compiled
    # function returns the loss, then writes every new value in place, all at once.
    updates = {p: p - lr * g for p, g in zip(params, grads)}
    return x, y, f, loss, updates


def backprop_table():
    """Step 2a: one gradient evaluation of the training network, as the course's table:
    every value of the forward sweep, then every adjoint of the reverse sweep (sg.trace)."""
    x, y, f, loss, updates = training_graph()
    print(sg.trace(loss, {x: X, y: Y}, wrt=list(updates)))


def train(hidden_units=4, lr=0.1, seed=0, max_steps=5000, print_every=25):
    """Step 2: learn XOR by gradient descent from a random start.

    With only two ReLUs, gradient descent from a random start often gets stuck
    (a unit that is zero on all four points never recovers), so we give the
    network four tanh units, which train reliably. We stop as soon as every
    point is classified correctly with a margin (output within 0.2 of its label).
    """
    x, y, f, loss, updates = training_graph(hidden_units, lr, seed)
    train_step = codegen.compile([x, y], loss, updates=updates)
    predict = codegen.compile([x], f)

    for step in range(1, max_steps + 1):
        loss_value = train_step(X, Y)
        done = confidently_correct(predict(X))
        if step % print_every == 0 or done:
            print(f"step {step:4d}  loss {float(loss_value):.4f}")
        if done:
            print(f"trained in {step} steps")
            break
    else:
        print(f"not converged after {max_steps} steps (try another seed or learning rate)")
    outputs = predict(X)
    print("trained network outputs:", np.round(outputs, 3).tolist())
    print("trained network:", classes(outputs))
    return train_step


def main():
    print("== 1. The book's XOR network ==")
    fixed_network()

    print()
    print("== 2. Learning XOR by gradient descent ==")
    print("The sweeps of the first gradient, with values (sg.trace):")
    backprop_table()
    print()
    train_step = train()

    print()
    print("== 3. The generated train step (train_step.source) ==")
    print(train_step.source)
    # train_step.save("xor_train_step.py") would write it as a module needing only NumPy.


if __name__ == "__main__":
    main()
