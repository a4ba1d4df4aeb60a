"""multi_head_backward: autograd of O = [A₁V₁ | A₂V₂]·W_O with dO, each head's weights as the softmax of pinned scores."""

from __future__ import annotations

import torch

from ..conftest import as_float


def t(value) -> torch.Tensor:
    return torch.tensor([[as_float(x) for x in row] for row in value], dtype=torch.float64)


def oracle(given, facts, options):
    scores = [t(given[f"A{h}"]).log().requires_grad_(True) for h in (1, 2)]  # softmax of ln A gives A (rows sum to 1)
    weights = [torch.softmax(s, dim=-1) for s in scores]
    values = [t(given[f"V{h}"]).requires_grad_(True) for h in (1, 2)]
    w_o = t(given["W_O"]).requires_grad_(True)
    for a in weights:
        a.retain_grad()
    heads = [a @ v for a, v in zip(weights, values)]
    h = torch.cat(heads, dim=1)
    h.retain_grad()
    torch.testing.assert_close(h.detach(), t(given["H"]), rtol=1e-12, atol=1e-12)  # the cached concatenation
    (h @ w_o).backward(t(given["dO"]))
    out = {"dW_O": w_o.grad, "dH": h.grad, "dV1": values[0].grad, "dV2": values[1].grad,
           "dA1": weights[0].grad, "dA2": weights[1].grad}
    if options["softmax"] == "yes":
        out["dS1"] = scores[0].grad
    # Head 1's output does not depend on head 2's weights or values: its Jacobian with respect to them is 0.
    a1, v1 = t(given["A1"]), t(given["V1"])
    a2, v2 = t(given["A2"]).requires_grad_(True), t(given["V2"]).requires_grad_(True)
    head1 = torch.cat([a1 @ v1, a2 @ v2], dim=1)[:, :1]
    grads = torch.autograd.grad(head1.sum(), (a2, v2), allow_unused=True, materialize_grads=True)
    out["cross"] = "no" if all(not g.any() for g in grads) else "yes"
    return out
