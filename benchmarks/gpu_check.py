"""The GPU check: run on a machine with an NVIDIA GPU and CuPy (under 5 minutes).

    pip install -e ".[test,cuda]" torch       # CuPy for your CUDA (see README), PyTorch with CUDA
    python benchmarks/gpu_check.py

1. the CuPy parity tests (tests/codegen/test_cupy_parity.py) on the real device
   (``SYMGRAPH_REAL_CUPY=1``): every op, Jacobians, Hessians, optimizers, BatchNorm/Dropout,
   ``sg.fit``, against the NumPy backend;
2. the medium and deep train steps of benchmarks/train_step.py in float32 with Adam and SGD, timed
   as medians of blocks of steps (the device synchronized at the end of each block):
   the CuPy backend, the NumPy backend (on the CPU), PyTorch CUDA eager, and torch.compile
   when it works. Ratios are to PyTorch CUDA eager, measured in the same run.

Targets (issue 13): CuPy backend <= 1.2x PyTorch CUDA eager on medium, faster than it on deep.

``--emulated`` runs step 2 on the CPU stand-in of codegen.testing with a few steps, to check that
the script works where there is no GPU (its times mean nothing).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from statistics import median
from time import perf_counter

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import codegen  # noqa: E402
import symgraph as sg  # noqa: E402
from train_step import ADAM, build_graph, cast_problem, learning_rate, make_problem, symgraph_optimizer  # noqa: E402


def symgraph_step(name, optimizer, backend, problem):
    weights, x, labels = problem
    with sg.fresh_graph():
        xs, y, params, loss = build_graph(name, "float32", weights)
        updates = symgraph_optimizer(optimizer, learning_rate(name, optimizer)).updates(loss)
        f = codegen.compile([xs, y], loss, updates=updates, backend=backend)
    if backend == "cupy":
        import cupy

        x, labels = cupy.asarray(x), cupy.asarray(labels)
    return lambda: f(x, labels)


def torch_step(name, optimizer, problem, compiled=False):
    import torch
    import torch.nn.functional as F

    weights, x, labels = problem
    dev = "cuda"
    params = [torch.tensor(w, device=dev, requires_grad=True) for w in weights]
    pairs = list(zip(params[0::2], params[1::2]))
    act = torch.relu if name == "medium" else torch.tanh
    lr = learning_rate(name, optimizer)
    opt = (torch.optim.Adam(params, lr=lr, betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["eps"])
           if optimizer == "adam" else torch.optim.SGD(params, lr=lr))
    xt, yt = torch.tensor(x, device=dev), torch.tensor(labels, device=dev)

    def forward():
        h = xt
        for W, b in pairs[:-1]:
            h = act(torch.addmm(b, h, W))
        return F.cross_entropy(torch.addmm(pairs[-1][1], h, pairs[-1][0]), yt)

    forward = torch.compile(forward) if compiled else forward

    def step():
        loss = forward()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    return step


def timed(step, sync, steps: int, blocks: int) -> float:
    """The median over blocks of the seconds per step."""
    for _ in range(3):
        step()
    sync()
    samples = []
    for _ in range(blocks):
        t0 = perf_counter()
        for _ in range(steps):
            step()
        sync()
        samples.append((perf_counter() - t0) / steps)
    return median(samples)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emulated", action="store_true", help="the CPU stand-in, a few steps: checks the script")
    parser.add_argument("--skip-tests", action="store_true", help="only the timings")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=7)
    args = parser.parse_args(argv)
    if args.emulated:
        from codegen.testing import emulated_cupy

        emulated = emulated_cupy()
        cupy = emulated.__enter__()
        args.steps, args.blocks, torch = 2, 1, None
        sync = lambda: None  # noqa: E731
    else:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() == 0:
            sys.exit("gpu_check: CuPy finds no GPU")
        sync = cupy.cuda.get_current_stream().synchronize
        try:
            import torch

            torch = torch if torch.cuda.is_available() else None
        except ImportError:
            torch = None
        if not args.skip_tests:
            env = dict(os.environ, SYMGRAPH_REAL_CUPY="1")
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/codegen/test_cupy_parity.py"],
                                  cwd=ROOT, env=env)
            print(f"parity tests on the device: {'passed' if done.returncode == 0 else 'FAILED'}")

    rows = []
    for name in ("medium", "deep"):
        problem = cast_problem(make_problem(name), "float32")
        for optimizer in ("adam", "sgd"):
            times = {"cupy backend": timed(symgraph_step(name, optimizer, "cupy", problem), sync, args.steps, args.blocks),
                     "numpy backend (CPU)": timed(symgraph_step(name, optimizer, "numpy", problem), lambda: None,
                                                  max(2, args.steps // 10), args.blocks)}
            if torch is not None:
                tsync = torch.cuda.synchronize
                times["PyTorch CUDA eager"] = timed(torch_step(name, optimizer, problem), tsync, args.steps, args.blocks)
                try:
                    times["torch.compile"] = timed(torch_step(name, optimizer, problem, True), tsync, args.steps,
                                                   args.blocks)
                except Exception as e:  # noqa: BLE001  (a report, not a failure)
                    print(f"torch.compile failed on {name} {optimizer}: {type(e).__name__}: {e}")
            rows.append((name, optimizer, times))
    print(f"\n{'network':8} {'optimizer':9} {'contender':22} {'median/step':>12} {'x eager':>8}")
    for name, optimizer, times in rows:
        ref = times.get("PyTorch CUDA eager")
        for key, t in times.items():
            ratio = f"{t / ref:8.2f}" if ref else "       -"
            print(f"{name:8} {optimizer:9} {key:22} {t * 1e3:9.3f} ms {ratio}")
    print("\ntargets: cupy backend <= 1.2x PyTorch CUDA eager on medium, < 1.0x on deep")
    if args.emulated:
        emulated.__exit__(None, None, None)
        print("(emulated on the CPU: these times mean nothing)")


if __name__ == "__main__":
    main()
