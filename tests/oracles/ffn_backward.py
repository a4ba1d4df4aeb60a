"""ffn_backward: autograd through Y = ReLU(X·W₁ + b₁)·W₂ + b₂ (+ X), torch float64."""

from __future__ import annotations

import torch

from ..test_torch_oracle import t


def oracle(given, facts, options):
    """Every gradient from one backward pass with the upstream dY; X fanned out into two copies for the skip path."""
    x = t(given["X"]).requires_grad_(True)
    w1, b1 = t(given["W1"]).requires_grad_(True), t(given["b1"])[0].requires_grad_(True)
    w2, b2 = t(given["W2"]).requires_grad_(True), t(given["b2"])[0].requires_grad_(True)
    x_skip, x_branch = x.clone(), x.clone()
    z = x_branch @ w1 + b1
    h = torch.relu(z)
    for node in (x_skip, x_branch, z, h):
        node.retain_grad()
    residual = options["residual"] == "yes"
    y = h @ w2 + b2 + (x_skip if residual else 0)
    y.backward(t(given["dY"]))
    if "Z" in facts:  # the stored forward value the sheet prints is the forward pass's own
        torch.testing.assert_close(z.detach(), t(facts["Z"]), rtol=0, atol=0)
    out = {"H": h.detach(), "mask": (z > 0).double(), "dW2": w2.grad, "db2": b2.grad.unsqueeze(0), "dH": h.grad,
           "dZ": z.grad, "dW1": w1.grad, "db1": b1.grad.unsqueeze(0), "dX": x.grad}
    if options["forward"] == "compute":
        out["Z"] = z.detach()
    if residual:
        out["dX_ffn"] = x_branch.grad
    return out
