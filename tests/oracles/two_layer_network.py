"""PyTorch autograd for two_layer_network: F.relu, ½(out − t)² backward, and torch.optim.SGD for update=sgd."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..conftest import as_float


def _tensor(value) -> torch.Tensor:
    """A JSON matrix, or one number (b₂, t: printed as numbers), as a float64 tensor (a number as 1×1)."""
    rows = value if isinstance(value, list) else [[value]]
    return torch.tensor([[as_float(x) for x in row] for row in rows], dtype=torch.float64)


def oracle(given, facts, options):
    x = _tensor(given["x"])
    t = _tensor(given["t"])
    params = {name: _tensor(given[name]).requires_grad_(True) for name in ("W1", "b1", "W2", "b2")}

    def forward():
        z = x @ params["W1"] + params["b1"]
        h = F.relu(z)
        return z, h, h @ params["W2"] + params["b2"]

    z, h, out = forward()
    for node in (z, h, out):
        node.retain_grad()
    loss = 0.5 * ((out - t) ** 2).sum()
    loss.backward()
    cut = [j for j in range(z.shape[1]) if z[0, j] < 0]
    assert len(cut) <= 1 and (z != 0).all()  # the sheet's draws: no 0 pre-activation, at most one unit cut
    zero_rows = [j for j in range(h.shape[1]) if (params["W1"].grad[:, j] == 0).all()]
    assert zero_rows == cut and (h.grad != 0).all()  # the cut unit's gradients are 0, ∂L/∂h never is
    result = {"z": z.detach(), "h": h.detach(), "out": out.item(), "L": loss.item(), "dout": out.grad.item(),
              "dW2": params["W2"].grad.clone(), "db2": params["b2"].grad.item(), "dh": h.grad, "dz": z.grad,
              "dW1": params["W1"].grad.clone(), "db1": params["b1"].grad.clone(),
              "zero_unit": str(cut[0]) if cut else "none", "why": "A" if cut else "C"}
    if options["update"] == "sgd":
        torch.optim.SGD(list(params.values()), lr=as_float(facts["eta"])).step()
        result.update(W1_new=params["W1"].detach(), b1_new=params["b1"].detach(), W2_new=params["W2"].detach(),
                      b2_new=params["b2"].item())
        with torch.no_grad():
            new_loss = 0.5 * ((forward()[2] - t) ** 2).sum().item()
        assert abs(new_loss - as_float(facts["L_new"])) <= 1e-9 * max(1.0, new_loss) and new_loss < loss.item()
    return result
