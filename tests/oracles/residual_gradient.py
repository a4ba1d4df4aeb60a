"""residual_gradient: autograd through both stacks of layers f_k(h) = a_k·h and through y = x + f(x), torch float64."""

from __future__ import annotations

import torch

from ..test_torch_oracle import t


def _first_count(a: torch.Tensor, threshold: torch.Tensor) -> int:
    """The fewest layers of a plain stack of f(h) = a·h after which autograd's ∂h_n/∂h_0 is below the threshold."""
    h0 = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    h, n = h0, 0
    while True:
        h, n = a * h, n + 1
        (grad,) = torch.autograd.grad(h, h0, retain_graph=True)
        if grad < threshold:
            return n


def oracle(given, facts, options):
    layers = int(options["layers"])
    a = [t(given[f"a{k}"]) for k in range(1, layers + 1)]
    g = t(given["g"])
    out = {}
    # The plain stack: h_k = a_k·h_{k−1}; each h_k keeps its gradient.
    h = [torch.tensor(1.0, dtype=torch.float64, requires_grad=True)]
    for k in range(layers):
        h.append(a[k] * h[-1])
        h[-1].retain_grad()
    h[-1].backward(g)
    for k in range(layers):
        out[f"g{k}"] = h[k].grad.item()
    # The residual stack: h_k = skip + f_k(branch), both copies of h_{k−1}, so each path's gradient is read apart.
    r = [torch.tensor(1.0, dtype=torch.float64, requires_grad=True)]
    branches = []
    for k in range(layers):
        skip, branch = r[-1].clone(), r[-1].clone()
        branch.retain_grad()
        branches.append(branch)
        r.append(skip + a[k] * branch)
        r[-1].retain_grad()
    r[-1].backward(g)
    for k in range(layers):
        out[f"r{k}"] = r[k].grad.item()
        out[f"branch{k + 1}"] = branches[k].grad.item()
    out["layers_needed"] = str(_first_count(t(facts["deep_a"]), t(facts["t"])))
    out["trains"] = "residual" if r[0].grad.abs() >= g.abs() > h[0].grad.abs() else "plain"
    # The vector block y = x + f(x) with f(x) = x·Jᵀ, whose Jacobian is J (checked with torch's own jacobian).
    j, gy = t(given["J"]), t(given["gy"])
    assert torch.equal(torch.autograd.functional.jacobian(lambda v: v @ j.T, torch.zeros(2, dtype=torch.float64)), j)
    x = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    x_skip, x_branch = x.clone(), x.clone()
    x_branch.retain_grad()
    (x_skip + x_branch @ j.T).backward(gy)
    out["gx_branch"], out["gx"] = x_branch.grad, x.grad
    return out
