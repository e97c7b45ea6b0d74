"""Inverting gradients: the reference's boolean-index implementation vs ``rllib_ext.hooks``.

The reference (MP-DQN ``_invert_gradients``) copies the gradient to the CPU, builds a boolean
mask and scatters the two scalings through it, in place. ``rllib_ext.hooks.invert_gradients``
is one ``torch.where`` on the inputs' device. Both are timed side by side on the CPU at
B x P in {128x3, 1024x10, 4096x64}; the script checks that the values are identical and prints
the speed-up. Run: .venv/bin/python benchmarks/invert_gradients.py
"""

from __future__ import annotations

import time

import torch

from rllib_ext.hooks import invert_gradients


def reference_invert(grad: torch.Tensor, vals: torch.Tensor, p_max: torch.Tensor,
                     p_min: torch.Tensor) -> torch.Tensor:
    """Re-statement of the reference semantics, with its boolean indexing and CPU round trip."""
    grad = grad.cpu()
    vals = vals.cpu()
    p_range = p_max - p_min
    with torch.no_grad():
        index = grad > 0
        grad[index] *= (p_max.expand_as(grad)[index] - vals[index]) / p_range.expand_as(grad)[index]
        index = ~index
        grad[index] *= (vals[index] - p_min.expand_as(grad)[index]) / p_range.expand_as(grad)[index]
    return grad


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    torch.manual_seed(0)
    print(f"{'B x P':>10} {'reference (us)':>15} {'rllib_ext (us)':>15} {'speed-up':>9}  same")
    for batch, params in ((128, 3), (1024, 10), (4096, 64)):
        grad = torch.randn(batch, params)
        vals = torch.empty(batch, params).uniform_(-1.5, 1.5)  # some past the bounds
        low, high = -torch.ones(params), torch.ones(params)
        repeats = max(50, 200_000 // (batch * params))
        # The reference works in place, so each call gets a fresh copy of the gradient.
        ref = timed(lambda g=grad, v=vals, lo=low, hi=high: reference_invert(g.clone(), v, hi, lo),
                    repeats)
        ours = timed(lambda g=grad, v=vals, lo=low, hi=high: invert_gradients(g, v, lo, hi),
                     repeats)
        same = torch.equal(reference_invert(grad.clone(), vals, high, low),
                           invert_gradients(grad, vals, low, high))
        print(f"{f'{batch}x{params}':>10} {ref * 1e6:>15.1f} {ours * 1e6:>15.1f} "
              f"{ref / ours:>8.1f}x  {same}")


if __name__ == "__main__":
    main()
