"""Forward vs reverse mode: the Jacobian of f: R^n -> R^m both ways, for n, m in {1, 10, 100, 1000}.

    f(x) = sigmoid(A @ tanh(x)),   A a fixed (m, n) matrix scaled by 1/sqrt(n)

``jacfwd`` pushes one tangent per input element through f (n passes); ``jacrev`` runs f once and
sweeps back once per output element (m sweeps). Theory: forward wins when n < m, reverse when
n > m, and they tie on the diagonal. Both Jacobians are checked against each other and against
the closed form diag(s (1 - s)) A diag(1 - tanh(x)^2).

Prints a Markdown table of the best-of-``repeats`` times and the ratio forward / reverse. The
ratio is what matters (both modes are timed back to back in the same process; absolute times
depend on the machine and its load). Run:

    python benchmarks/modes.py [--sizes 1 10 100 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from report import markdown_table

from tinygrad_edu import Tensor
from tinygrad_edu.func import jacfwd, jacrev

SIZES = (1, 10, 100, 1000)


def problem(n: int, m: int, seed: int = 0):
    """``f``, a point ``x`` and the closed-form Jacobian there."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, n)) / np.sqrt(n)
    x = rng.standard_normal(n)
    matrix = Tensor(a)

    def f(x: Tensor) -> Tensor:
        return (matrix @ x.tanh()).sigmoid()

    s = 1 / (1 + np.exp(-(a @ np.tanh(x))))
    exact = (s * (1 - s))[:, None] * a * (1 - np.tanh(x) ** 2)[None, :]
    return f, Tensor(x), exact


def best_time(fn, repeats: int) -> tuple[float, np.ndarray]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result.data


def measure(n: int, m: int, repeats: int) -> dict:
    f, x, exact = problem(n, m)
    forward, j_forward = best_time(lambda: jacfwd(f)(x), repeats)
    reverse, j_reverse = best_time(lambda: jacrev(f)(x), repeats)
    for jac in (j_forward, j_reverse):
        np.testing.assert_allclose(jac, exact, rtol=1e-10, atol=1e-13)
    return {"n": n, "m": m, "forward": forward, "reverse": reverse}


def table(rows: list[dict], repeats: int) -> str:
    header = ["n (inputs)", "m (outputs)", "forward (jacfwd)", "reverse (jacrev)", "fwd / rev"]
    cells = [
        [r["n"], r["m"], f"{r['forward'] * 1e3:.2f} ms", f"{r['reverse'] * 1e3:.2f} ms",
         f"{r['forward'] / r['reverse']:.2f}"]
        for r in rows
    ]  # fmt: skip
    return markdown_table(f"Jacobians both ways, best of {repeats}", header, cells)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3, help="best of this many (default 3)")
    args = parser.parse_args(argv)
    rows = [measure(n, m, args.repeats) for n in args.sizes for m in args.sizes]
    print(table(rows, args.repeats))
    return rows


if __name__ == "__main__":
    main()
