"""Every transformer key agrees with PyTorch (float64, CPU) to 1e-9 relative, read from the JSON key."""

from __future__ import annotations

import math
import re
from decimal import Decimal

import pytest
import sympy
import torch
import torch.nn.functional as F

from generator.core.registry import make_problem, problem_types

from . import oracles
from .conftest import as_float, blanks_by_name, key_json
from .draws import by_type, key_json_of

DRAWS_PER_OPTION_SET = 60
MOST_DRAWS = 600  # a type with many option sets: each still gets at least 16 of the contract's draws
RTOL = 1e-9


def t(value) -> torch.Tensor:
    """A JSON value (nested lists of exact strings, or one string) as a float64 tensor."""
    if isinstance(value, list):
        return torch.tensor([[as_float(x) for x in row] for row in value], dtype=torch.float64)
    return torch.tensor(as_float(value), dtype=torch.float64)


def embedding(given, facts, options):
    ids = t(facts["token_ids"])[0].long()
    x_tok = F.embedding(ids, t(given["E"]))
    out = {"X_tok": x_tok}
    if "P" in facts:
        out["X"] = x_tok + t(facts["P"])
    return out


def qkv_projection(given, facts, options):
    x = t(given["X"])
    return {name: x @ t(given[f"W_{name}"]) for name in "QKV"}


def attention_scores(given, facts, options):
    q, k = t(given["Q"]), t(given["K"])
    raw = q @ k.T
    s = raw / math.sqrt(q.shape[1])
    if options["mask"] == "causal":
        s = s.masked_fill(torch.triu(torch.ones_like(s, dtype=torch.bool), diagonal=1), float("-inf"))
    return {"QKT": raw, "S": s}


def softmax(given, facts, options):
    z = t(given["z"])
    out = {"p": torch.softmax(z, dim=-1)}
    if options["form"] == "logs":
        out["exp_z"] = torch.exp(z)
    if options["form"] == "table":
        out["t"] = z - z.max(dim=-1, keepdim=True).values
    return out


def attention_output(given, facts, options):
    return {"O": t(given["A"]) @ t(given["V"])}


def multi_head(given, facts, options):
    h = torch.cat([t(given[f"H{i + 1}"]) for i in range(int(options["heads"]))], dim=1)
    return {"H": h, "O": h @ t(given["W_O"])}


def layernorm(given, facts, options):
    x, gamma, beta = t(given["x"]), t(given["gamma"])[0], t(given["beta"])[0]
    mu, var = x.mean(dim=-1, keepdim=True), x.var(dim=-1, unbiased=False, keepdim=True)
    sigma = var.sqrt()
    one = x.shape[0] == 1
    return {
        "mu": mu.item() if one else mu, "var": var.item() if one else var, "sigma": sigma.item() if one else sigma,
        "xhat": F.layer_norm(x, (x.shape[1],), eps=0.0),
        "y": F.layer_norm(x, (x.shape[1],), gamma, beta, eps=0.0),
    }


def layernorm_backward(given, facts, options):
    """Autograd through F.layer_norm (ε = 0) with the upstream gradient; ∂L/∂x̂ from autograd of the affine step."""
    x = t(given["x"]).requires_grad_(True)
    gamma, beta = t(given["gamma"])[0].requires_grad_(True), t(given["beta"])[0].requires_grad_(True)
    dy = t(given["dy"])
    F.layer_norm(x, (4,), gamma, beta, eps=0.0).backward(dy)
    xhat = F.layer_norm(x.detach(), (4,), eps=0.0).requires_grad_(True)
    (xhat * gamma.detach() + beta.detach()).backward(dy)
    mu, sigma = x.detach().mean(dim=-1, keepdim=True), x.detach().var(dim=-1, unbiased=False, keepdim=True).sqrt()
    one = x.shape[0] == 1
    return {"mu": mu.item() if one else mu, "sigma": sigma.item() if one else sigma, "xhat": xhat.detach(),
            "dbeta": beta.grad.unsqueeze(0), "dgamma": gamma.grad.unsqueeze(0), "dxhat": xhat.grad, "dx": x.grad}


def ffn(given, facts, options):
    x = t(given["x"])
    h = x @ t(given["W1"]) + t(given["b1"])
    r = torch.relu(h)
    f = r @ t(given["W2"]) + t(given["b2"])
    return {"h": h, "r": r, "f": f, "y": x + f}


def ffn_gelu(given, facts, options):
    h = t(given["x"]) @ t(given["W1"]) + t(given["b1"])
    return {"h": h, "g": F.gelu(h, approximate="none")}


def cross_entropy(given, facts, options):
    z, targets = t(given["z"]), t(facts["targets"])[0].long()
    per_position = F.cross_entropy(z, targets, reduction="none")
    return {
        "p": torch.softmax(z, dim=-1),
        "L_pos": per_position.item() if len(targets) == 1 else per_position.unsqueeze(1),
        "L": F.cross_entropy(z, targets, reduction=options["reduction"]).item(),
    }


def output_logits(given, facts, options):
    z = F.linear(t(given["h"]), t(given["W_out"]).T, t(given["b"])[0] if "b" in given else None)
    return {"z": z, "p": torch.softmax(z, dim=-1), "next": "ABCD"[int(z[-1].argmax())]}


def dlogits(given, facts, options):
    """The gradient from autograd: cross-entropy of the given logits, backward."""
    z = t(given["z"]).requires_grad_(True)
    targets = t(facts["targets"])[0].long()
    p = torch.softmax(z, dim=-1)
    F.cross_entropy(z, targets, reduction=options["reduction"]).backward()
    found = {"p": p.detach(), "y": F.one_hot(targets, z.shape[1]).double(), "dz": z.grad.clone()}
    if options["sign"] == "yes":  # one torch.optim.SGD step: the logits of position 0 that rise
        before = z.detach().clone()
        torch.optim.SGD([z], lr=0.1).step()
        rising = [j for j in range(z.shape[1]) if z[0, j] > before[0, j]]
        found["rises"] = "ABCD"[rising[0]] if len(rising) == 1 else "none"
        found["why"] = "1"
    return found


def sgd_step(given, facts, options):
    """Two steps of torch.optim.SGD (momentum μ or none, lr 1/10, no dampening) with the given gradients."""
    theta = t(given["theta0"]).clone().requires_grad_(True)
    momentum = float(sympy.Rational(options["momentum"])) if options["optimizer"] == "momentum" else 0.0
    optimizer = torch.optim.SGD([theta], lr=0.1, momentum=momentum)
    out = {}
    for step in (1, 2):
        theta.grad = t(given[f"g{step}"]).clone()
        optimizer.step()
        out[f"theta{step}"] = theta.detach().clone()
        if momentum:
            out[f"v{step}"] = optimizer.state[theta]["momentum_buffer"].clone()
    return out


def relu_backward(given, facts, options):
    """Autograd through torch.relu; with at_zero=yes the one 0 entry's gradient is read from autograd too (ReLU'(0) = 0)."""
    h = t(given["h"]).requires_grad_(True)
    torch.relu(h).backward(t(given["dr"]))
    out = {"mask": (h > 0).double(), "dh": h.grad}
    zeros = (h == 0).nonzero().tolist()
    if options.get("at_zero") == "yes":
        assert len(zeros) == 1, zeros
        (i, j), = zeros
        assert t(given["dr"])[i, j] != 0, "a blocked 0 gradient would show nothing"
        out.update({"dh_zero": h.grad[i, j], "why_zero": "subgradient"})
    else:
        assert not zeros, zeros
    return out


def residual_backward(given, facts, options):
    """Autograd of h = x + F(x) with x fanned out into two retained copies, so each path's gradient is read apart."""
    x, w = t(given["x"]).requires_grad_(True), t(given["W"]).requires_grad_(True)
    x_skip, x_branch = x.clone(), x.clone()
    u = x_branch @ w
    f = torch.relu(u) if options["sublayer"] == "relu" else u * 1  # a separate node, so F's gradient is its own
    for node in (x_skip, x_branch, u, f):
        node.retain_grad()
    (x_skip + f).backward(t(given["dh"]))
    out = {"dF": f.grad, "dx_skip": x_skip.grad, "dW": w.grad, "dx_branch": x_branch.grad, "dx": x.grad}
    if options["sublayer"] == "relu":
        out.update(mask=(u > 0).double(), du=u.grad)
    return out


def embedding_grad(given, facts, options):
    """Autograd through F.embedding: a repeated token's row gets the sum of its positions' gradients."""
    dx = t(given["dX"])
    table = torch.zeros(4, dx.shape[1], dtype=torch.float64, requires_grad=True)
    F.embedding(t(facts["token_ids"])[0].long(), table).backward(dx)
    return {"dE": table.grad}


def grad_clip(given, facts, options):
    """The sheet's rule in torch ops; torch.nn.utils.clip_grad_norm_ must agree up to its own 1e-6 in the divisor."""
    g_w, g_b, c = t(given["g_W"]), t(given["g_b"]), float(sympy.Rational(options["max_norm"]))
    norm = torch.linalg.vector_norm(torch.cat([g_w.flatten(), g_b.flatten()]))
    w, b = torch.zeros_like(g_w, requires_grad=True), torch.zeros_like(g_b, requires_grad=True)
    w.grad, b.grad = g_w.clone(), g_b.clone()
    torch.nn.utils.clip_grad_norm_([w, b], max_norm=c)
    scale = min(1.0, c / norm.item())
    torch.testing.assert_close(w.grad, g_w * scale, rtol=1e-5, atol=0)
    return {"norm": norm.item(), "ratio": c / norm.item(), "exceeds": "yes" if norm.item() > c else "no",
            "scale": scale, "gW_clipped": g_w * scale, "gb_clipped": g_b * scale}


def adam_step(given, facts, options):
    """Two steps of torch.optim.Adam / AdamW with the sheet's η, β₁, β₂, λ and ε = 0; m and v from its state."""
    theta = t(given["theta0"]).clone().requires_grad_(True)
    beta1, beta2 = (float(sympy.Rational(facts[k])) for k in ("beta1", "beta2"))
    settings = {"lr": float(sympy.Rational(facts["eta"])), "betas": (beta1, beta2), "eps": 0.0}
    optimizer = (torch.optim.AdamW([theta], weight_decay=float(sympy.Rational(facts["weight_decay"])), **settings)
                 if options["optimizer"] == "adamw" else torch.optim.Adam([theta], weight_decay=0.0, **settings))
    out = {}
    for step in (1, 2):
        theta.grad = t(given[f"g{step}"]).clone()
        optimizer.step()
        state = optimizer.state[theta]
        out[f"m{step}"], out[f"v{step}"] = state["exp_avg"].clone(), state["exp_avg_sq"].clone()
        out[f"m_hat{step}"] = out[f"m{step}"] / (1 - beta1 ** step)
        out[f"v_hat{step}"] = out[f"v{step}"] / (1 - beta2 ** step)
        out[f"theta{step}"] = theta.detach().clone()
    return out


def output_backward(given, facts, options):
    h, w = t(given["h"]).requires_grad_(True), t(given["W_out"]).requires_grad_(True)
    b = torch.zeros(1, w.shape[1], dtype=torch.float64, requires_grad=True)
    (h @ w + b).backward(t(given["dz"]))
    return {"dW": w.grad, "db": b.grad, "dh": h.grad}


def softmax_backward(given, facts, options):
    z, ds = t(given["z"])[0], t(given["ds"])[0]
    leaf = z.clone().requires_grad_(True)
    s = torch.softmax(leaf, dim=-1)
    s.backward(ds)
    out = {"s": s.detach(), "dot": float(ds @ s.detach()), "dz": leaf.grad}
    if options["jacobian"] == "yes":
        out["J"] = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, dim=-1), z)
    return out


def attention_backward(given, facts, options):
    """Autograd of one causal head with X and the weights as leaves; Q, K, V, R, S and A keep their gradients."""
    x, wq, wk, wv = (t(given[name]).requires_grad_(True) for name in ("X", "W_Q", "W_K", "W_V"))
    q, k, v = x @ wq, x @ wk, x @ wv
    r = q @ k.T
    causal = torch.triu(torch.ones_like(r, dtype=torch.bool), diagonal=1)
    s = (r / math.sqrt(as_float(facts["d_k"]))).masked_fill(causal, float("-inf"))
    a = torch.softmax(s, dim=-1)
    for node in (q, k, v, r, s, a):
        node.retain_grad()
    (a @ v).backward(t(given["dO"]))
    out = {name: node.detach() for name, node in (("Q", q), ("K", k), ("V", v), ("R", r), ("S", s), ("A", a))}
    out.update(dV=v.grad, dA=a.grad, dS=s.grad, dR=r.grad, dQ=q.grad, dK=k.grad, dW_Q=wq.grad, dW_K=wk.grad, dW_V=wv.grad)
    return out


def lr_experiment(given, facts, options):
    """torch.optim.SGD on L = a(w − c)²/2 with each learning rate; a rate whose w ends farther away diverges."""
    a, c, w0 = (as_float(given[k]) for k in ("a", "c", "w0"))
    out = {}
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    (0.5 * a * (w - c) ** 2).backward()
    out["g0"] = w.grad.item()
    names = ("eta1", "eta2", "eta3", "eta4") if options.get("rates") == "4" else ("eta1", "eta2")
    for name in names:
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.SGD([w], lr=as_float(facts[name]))
        trail = []
        for _ in range(int(options["steps"])):
            optimizer.zero_grad()
            (0.5 * a * (w - c) ** 2).backward()
            optimizer.step()
            trail.append(w.item())
        out[f"w_{name}"] = torch.tensor([trail], dtype=torch.float64)
        if options.get("rates") == "4":
            # Read off the trail: farther than w₀ at the end diverges; a distance that changes sign converges by
            # oscillating; otherwise it converges (η₃ = 1/a lands on c at once).
            distances = [w0 - c] + [v - c for v in trail]
            crosses = any(p * q < 0 for p, q in zip(distances, distances[1:]))
            out[f"kind_{name}"] = ("diverges" if abs(distances[-1]) > abs(distances[0]) else
                                   "oscillates" if crosses else "converges")
    runs = tuple(bool(abs(out[f"w_{name}"][0, -1] - c) > abs(w0 - c)) for name in ("eta1", "eta2"))
    out["diverges"] = {(True, False): "eta1", (False, True): "eta2", (True, True): "both", (False, False): "neither"}[runs]
    out["limit"] = 2 / a
    if options.get("rates") == "4":
        assert abs(as_float(facts["eta3"]) - 1 / a) < 1e-12 and out["w_eta3"][0, 0] == c, "eta_3 = 1/a lands on c in one step"
        assert 2 / a < as_float(facts["eta4"]) < 3 / a, "eta_4 is just past 2/a"
    return out


def gradient_check(given, facts, options):
    a, c, w0, h = (torch.tensor(as_float(v), dtype=torch.float64) for v in (given["a"], given["c"], given["w"], facts["h"]))
    w = w0.clone().requires_grad_(True)

    def loss(x):
        return 0.5 * a * (x - c) ** 2

    loss(w).backward()
    values = {"L": loss(w0), "L_plus": loss(w0 + h), "L_minus": loss(w0 - h)}
    found = {**{k: v.item() for k, v in values.items()}, "analytic": w.grad.item(),
             "central": ((values["L_plus"] - values["L_minus"]) / (2 * h)).item(),
             "forward": ((values["L_plus"] - values["L"]) / h).item()}
    if options["verdict"] == "yes":  # which difference autograd's gradient agrees with (to float precision)
        equal = [abs(found[k] - found["analytic"]) < 1e-9 for k in ("central", "forward")]
        found["match"] = {(True, False): "central", (False, True): "forward", (True, True): "both"}.get(
            tuple(equal), "neither")
        found["why"] = "1"
    return found


def batch_average(given, facts, options):
    """Autograd of the mean of linear per-example losses G[i]·θ (whose gradients are the rows of G), then SGD."""
    grads = t(given["G"])
    theta = t(given["theta0"])[0].clone().requires_grad_(True)
    (grads @ theta).mean().backward()
    mean = theta.grad.clone()
    torch.optim.SGD([theta], lr=as_float(facts["eta"])).step()
    return {"g_mean": mean.unsqueeze(0), "theta1": theta.detach().unsqueeze(0)}


def gelu_backward(given, facts, options):
    h = t(given["h"]).requires_grad_(True)
    F.gelu(h, approximate="none").backward(t(given["dg"]))
    slope = h.grad / t(given["dg"])
    return {"slope": slope, "dh": h.grad}


def example1(given, facts, options):
    """The whole chain in torch; after the Given box it continues from the sheet's simple weights."""
    x = F.embedding(t(facts["token_ids"])[0].long(), t(given["E"]))
    q, k, v = x @ t(given["W_Q"]), x @ t(given["W_K"]), x @ t(given["W_V"])
    s = q @ k.T / math.sqrt(int(options["d_k"]))
    z = t(facts["given_weights"]) @ v @ t(given["W_out"])
    return {"X": x, "Q": q, "K": k, "V": v, "S": s, "a": torch.softmax(s[1:2], dim=-1),
            "c": t(facts["given_weights"]) @ v, "z": z, "p": torch.softmax(z, dim=-1),
            "next": "ABCD"[int(z.argmax())]}


def example2(given, facts, options):
    """Example 1's chain, then autograd of the loss from the Given probabilities, and one step of torch.optim.SGD."""
    out = example1(given, facts, options)
    target = torch.tensor([int(facts["target_index"])])
    w = t(given["W_out"]).clone().requires_grad_(True)
    z = out["c"] @ w
    z.retain_grad()
    # Backpropagate from the Given probabilities: the logits take the value ln p̃ (so softmax gives p̃) while
    # the gradient still flows through z = c·W_out.
    pinned = z + (t(facts["given_p"]).log() - z).detach()
    loss = F.cross_entropy(pinned, target)
    loss.backward()
    out.update({"L_exact": loss.item(), "L": loss.item(), "dz": z.grad, "dW_out": w.grad.clone()})
    torch.optim.SGD([w], lr=as_float(facts["eta"])).step()
    z_new = out["c"] @ w.detach()
    out.update({"W_out_new": w.detach(), "z_new": z_new})
    # The likeliest wrong token after the step: the largest new probability once the target's is set aside.
    p_after = torch.softmax(z_new, dim=-1)[0].clone()
    p_after[target] = -1.0
    out["likeliest_wrong"] = "ABCD"[int(p_after.argmax())]
    return out


def example3(given, facts, options):
    """Autograd of the whole chain to W_out, W_V, W_K and W_Q, with the weights pinned to ã and the logits to ln p̃."""
    out = example1(given, facts, options)
    x = F.embedding(t(facts["token_ids"])[0].long(), t(given["E"]))
    w = {n: t(given[n]).clone().requires_grad_(True) for n in ("W_Q", "W_K", "W_V", "W_out")}
    q, k, v = x @ w["W_Q"], x @ w["W_K"], x @ w["W_V"]
    raw = q[1:2] @ k.T
    s = raw / math.sqrt(int(options["d_k"]))
    # Pinned in value to ln ã (so softmax gives ã exactly), with the gradient flowing through the scores.
    s_pinned = s + (t(facts["given_weights"]).log() - s).detach()
    a = torch.softmax(s_pinned, dim=-1)
    c = a @ v
    z = c @ w["W_out"]
    z_pinned = z + (t(facts["given_p"]).log() - z).detach()
    for tensor in (q, k, v, raw, s, a, c, z):
        tensor.retain_grad()
    loss = F.cross_entropy(z_pinned, torch.tensor([int(facts["target_index"])]))
    loss.backward()
    out.update({"L_exact": loss.item(), "L": loss.item(), "dz": z.grad, "dW_out": w["W_out"].grad, "dc": c.grad, "dV": v.grad, "da": a.grad,
                "dS": s.grad, "dR": raw.grad, "dq": q.grad[1:2], "dK": k.grad,
                "dW_Q": w["W_Q"].grad, "dW_K": w["W_K"].grad, "dW_V": w["W_V"].grad})
    assert not q.grad[0].any(), "row 0 of Q reaches no loss"
    if options.get("update") == "sgd":
        # One step of torch.optim.SGD on all four matrices with those gradients, then the forward pass again in
        # full precision (no pinning, no rounding): the key's exact values are the exact model after the step.
        torch.optim.SGD(list(w.values()), lr=as_float(facts["eta"])).step()
        new = {n: p.detach() for n, p in w.items()}
        q1, k1, v1 = x[1:2] @ new["W_Q"], x @ new["W_K"], x @ new["W_V"]
        s1 = q1 @ k1.T / math.sqrt(int(options["d_k"]))
        a1 = torch.softmax(s1, dim=-1)
        c1 = a1 @ v1
        z1 = c1 @ new["W_out"]
        target = int(facts["target_index"])
        loss1 = F.cross_entropy(z1, torch.tensor([target]))
        out.update({"W_Q_new": new["W_Q"], "W_K_new": new["W_K"], "W_V_new": new["W_V"], "W_out_new": new["W_out"],
                    "q_new": q1, "K_new": k1, "V_new": v1, "S_new": s1, "a_new": a1, "c_new": c1, "z_new": z1,
                    "p_new": torch.softmax(z1, dim=-1)[0, target]})
        # The sheet's loss before the step is −ln p̃_target; the true loss before (exact weights a) falls or rises alike.
        before = -math.log(as_float(facts["given_p"][0][target]))
        z0 = torch.softmax(q @ k.T / math.sqrt(int(options["d_k"])), dim=-1)[1:2].detach() @ v.detach() @ t(given["W_out"])
        true_before = F.cross_entropy(z0, torch.tensor([target])).item()
        assert (loss1.item() < before) == (loss1.item() < true_before)
        out["loss_down"] = "yes" if loss1.item() < before else "no"
    return out


def example4(given, facts, options):
    """Full-batch torch.optim.SGD on W_out from 0 with the mean cross-entropy; every printed loss within its rounding."""
    c, targets = t(given["C"]), t(facts["targets"])[0].long()
    w = torch.zeros(c.shape[1], 4, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=as_float(facts["eta"]))
    losses, out = [], {}
    for epoch in range(int(facts["epochs"]) + 1):
        optimizer.zero_grad()
        z = c @ w
        z.retain_grad()
        loss = F.cross_entropy(z, targets)
        loss.backward()
        losses.append(loss.item())
        if epoch == 0:
            out.update({"p0": torch.softmax(z, dim=-1).detach(), "L0_exact": loss.item(), "L0": loss.item(),
                        "dZ": z.grad * len(targets), "S": c.T @ (z.grad * len(targets)), "G": w.grad.clone()})
        optimizer.step()
        if epoch == 0:
            z1 = c @ w.detach()
            out.update({"W1": w.detach().clone(), "Z1": z1})
            out.update({f"next{b}": "ABCD"[int(z1[b].argmax())] for b in range(len(targets))})
    printed = [as_float(v) for v in facts["loss_curve"][0]]
    assert len(printed) == len(losses)
    for value, exact in zip(printed, losses):
        assert abs(value - exact) <= 0.5e-4 + 1e-12, (printed, losses)
    return out


def example5(given, facts, options):
    o = t(given["A"]) @ t(given["V"])
    h = o @ t(given["W1"]) + t(given["b1"])
    r = torch.relu(h)
    f = r @ t(given["W2"]) + t(given["b2"])
    return {"O": o, "h": h, "r": r, "f": f, "y": o + f}


def example6(given, facts, options):
    o = t(given["A"]) @ t(given["V"])
    r1 = t(given["X"]) + o
    y1 = F.layer_norm(r1, (4,), t(given["gamma1"])[0], t(given["beta1"])[0], eps=0.0)
    h = y1 @ t(given["W1"]) + t(given["b1"])
    r = torch.relu(h)
    r2 = y1 + r @ t(given["W2"]) + t(given["b2"])
    last = r2[1:2]
    return {"O": o, "r1": r1, "mu1": r1.mean(-1, keepdim=True), "sigma1": r1.var(-1, unbiased=False, keepdim=True).sqrt(),
            "y1": y1, "h": h, "r": r, "r2": r2, "mu2": last.mean().item(), "sigma2": last.var(unbiased=False).sqrt().item(),
            "y2": F.layer_norm(last, (4,), t(given["gamma2"])[0], t(given["beta2"])[0], eps=0.0)}


def _add_norm(out, r, gamma, beta, names):
    """Add & Norm's LayerNorm of the residual sum r (F.layer_norm, ε = 0): records R, μ, σ under `names`, returns H."""
    out.update(zip(names, (r, r.mean(-1, keepdim=True), r.var(-1, unbiased=False, keepdim=True).sqrt())))
    return F.layer_norm(r, (4,), t(gamma)[0], t(beta)[0], eps=0.0)


def tiny_transformer(given, facts, options):
    """The whole chain in torch (LayerNorm, causal attention through SDPA, FFN, cross-entropy); after each
    Given box it continues from the sheet's simple values, as the student does. norm=post: no LayerNorm on the
    embeddings, Add & Norm after the attention and after the feed-forward layer."""
    post = options.get("norm") == "post"
    n, heads = len(facts["token_ids"][0]), int(options["heads"])
    x = F.embedding(t(facts["token_ids"])[0].long(), t(given["E"])) + t(given["P"])
    if post:
        y, out = x, {"X": x}
    else:
        y = F.layer_norm(x, (4,), t(given["gamma"])[0], t(given["beta"])[0], eps=0.0)
        out = {"X": x, "mu": x.mean(-1, keepdim=True), "sigma": x.var(-1, unbiased=False, keepdim=True).sqrt(), "Y": y}
    q, k, v = y @ t(given["W_Q"]), y @ t(given["W_K"]), y @ t(given["W_V"])
    causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    out.update({"Q": q, "K": k, "V": v})
    given_weights = t(facts["given_weights"]).reshape(heads, n, n)
    heads_out = []
    for h in range(heads):
        qh, kh, vh = q[:, h:h + 1], k[:, h:h + 1], v[:, h:h + 1]
        out[f"S{h + 1}"] = (qh @ kh.T).masked_fill(causal, float("-inf"))
        out[f"A{h + 1}"] = torch.softmax(out[f"S{h + 1}"], dim=-1)
        # With the true weights, SDPA (scale 1/√1) gives the head output; with the Given ones, a matmul.
        torch.testing.assert_close(F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=1.0),
                                   out[f"A{h + 1}"] @ vh, rtol=RTOL, atol=1e-12)
        heads_out.append(given_weights[h] @ vh)
    out["O"] = torch.cat(heads_out, dim=1)
    out["H1"] = y + out["O"] @ t(given["W_O"])
    if post:
        out["H1"] = _add_norm(out, out["H1"], given["gamma_1"], given["beta_1"], ("R1", "mu", "sigma"))
    out["u"] = out["H1"] @ t(given["W_1"]) + t(given["b_1"])
    out["r"] = torch.relu(out["u"])
    out["H2"] = out["H1"] + out["r"] @ t(given["W_2"]) + t(given["b_2"])
    if post:
        out["H2"] = _add_norm(out, out["H2"], given["gamma_2"], given["beta_2"], ("R2", "mu2", "sigma2"))
    out["z"] = out["H2"] @ t(given["W_out"])
    targets = t(facts["targets"])[0].long()
    out["p_target"] = torch.softmax(out["z"], dim=-1).gather(1, targets.unsqueeze(1))
    p_given = t(facts["given_p"])
    # The loss from the Given probabilities: nll_loss of their logarithms.
    log_p = torch.full((n, 4), -1.0, dtype=torch.float64).scatter(1, targets.unsqueeze(1), p_given.log())
    out["L_pos"] = F.nll_loss(log_p, targets, reduction="none").unsqueeze(1)
    out["L"] = out["L_exact"] = F.nll_loss(log_p, targets, reduction=options["reduction"]).item()
    return out


def training_step(given, facts, options):
    """The whole step in torch: autograd of the loss to every parameter, with the attention weights pinned to Ã and the
    logits to ln p̃ in value (the gradient still flows through every product), then torch.optim.AdamW on the chosen few.
    norm=post: no LayerNorm on the embeddings, F.layer_norm after each residual sum (Add & Norm)."""
    out = tiny_transformer(given, facts, options) if options["forward"] == "compute" else {}
    post = options.get("norm") == "post"
    n, heads = len(facts["token_ids"][0]), int(options["heads"])
    norms = ("gamma_1", "beta_1", "gamma_2", "beta_2") if post else ("gamma", "beta")
    names = ("E", "P", *norms, "W_Q", "W_K", "W_V", "W_O", "W_1", "b_1", "W_2", "b_2", "W_out")
    w = {name: t(given[name]).clone().requires_grad_(True) for name in names}
    ids, targets = t(facts["token_ids"])[0].long(), t(facts["targets"])[0].long()
    x = F.embedding(ids, w["E"]) + w["P"]
    y = x if post else F.layer_norm(x, (4,), w["gamma"][0], w["beta"][0], eps=0.0)
    q, k, v = y @ w["W_Q"], y @ w["W_K"], y @ w["W_V"]
    causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    given_weights = t(facts["given_weights"]).reshape(heads, n, n)
    scores, weights, heads_out = [], [], []
    for h in range(heads):
        s = q[:, h:h + 1] @ k[:, h:h + 1].T
        log_given = given_weights[h].masked_fill(causal, 1.0).log()  # masked entries are set to −∞ below
        a = torch.softmax((s + (log_given - s).detach()).masked_fill(causal, float("-inf")), dim=-1)
        torch.testing.assert_close(a, given_weights[h], rtol=RTOL, atol=1e-12)
        scores.append(s)
        weights.append(a)
        heads_out.append(a @ v[:, h:h + 1])
    o = torch.cat(heads_out, dim=1)
    r1 = y + o @ w["W_O"]
    h1 = F.layer_norm(r1, (4,), w["gamma_1"][0], w["beta_1"][0], eps=0.0) if post else r1
    u = h1 @ w["W_1"] + w["b_1"]
    if options.get("activation") == "gelu":
        # The sheet's GELU: value pinned to the Given r̃ and slope to s̃ (½ at 0, ReLU's 1 or 0 where |u| ≥ 3), each an
        # honest rounding of F.gelu (erf) and its autograd slope, within the stated 0.005 and 0.012.
        u_probe = u.detach().clone().requires_grad_(True)
        F.gelu(u_probe).sum().backward()
        slope, r_given = u_probe.grad, torch.relu(u.detach())  # the chain's r̃: ReLU's value, checked against F.gelu
        s_given = torch.round(slope * 2) / 2
        assert torch.all((F.gelu(u.detach()) - r_given).abs() <= 0.005) and torch.all((slope - s_given).abs() <= 0.012)
        r = r_given + s_given * (u - u.detach())
    else:
        r = torch.relu(u)
    r2 = h1 + r @ w["W_2"] + w["b_2"]
    h2 = F.layer_norm(r2, (4,), w["gamma_2"][0], w["beta_2"][0], eps=0.0) if post else r2
    z = h2 @ w["W_out"]
    z_pinned = z + (t(facts["given_p_rows"]).log() - z).detach()
    for tensor in (x, y, q, k, v, o, r1, h1, u, r, r2, h2, z, *scores, *weights):
        tensor.retain_grad()
    losses = F.cross_entropy(z_pinned, targets, reduction="none")
    loss = losses.mean() if options["reduction"] == "mean" else losses.sum()
    loss.backward()
    out.update({"L_pos": losses.detach().unsqueeze(1), "L_exact": loss.item(), "L": loss.item(), "dz": z.grad, "dH2": h2.grad, "dr": r.grad, "du": u.grad,
                "dH1": h1.grad, "dO": o.grad, "dV": v.grad, "dQ": q.grad, "dK": k.grad, "dX": x.grad})
    if post:
        out.update({"dR2": r2.grad, "dR1": r1.grad})
    else:
        out["dY"] = y.grad
    out.update({"d" + name: w[name].grad for name in names})
    for h in range(heads):
        # Gradients reach the masked weights too (dO·V), but the mask holds those weights at 0: the sheet writes 0.
        out[f"dA{h + 1}"] = weights[h].grad.masked_fill(causal, 0.0)
        out[f"dS{h + 1}"] = scores[h].grad
    updated = options["update"].split("+")
    if post:  # gamma and beta name the second LayerNorm's
        updated = [{"gamma": "gamma_2", "beta": "beta_2"}.get(name, name) for name in updated]
    chosen = [w[name] for name in updated]
    optimizer = torch.optim.AdamW(chosen, lr=as_float(facts["lr"]), betas=(as_float(facts["beta1"]), as_float(facts["beta2"])),
                                  eps=0.0, weight_decay=as_float(facts["weight_decay"]))
    optimizer.step()
    for name, tensor in zip(updated, chosen):
        state = optimizer.state[tensor]
        out[f"mhat_{name}"] = state["exp_avg"] / (1 - as_float(facts["beta1"]))
        out[f"rootvhat_{name}"] = (state["exp_avg_sq"] / (1 - as_float(facts["beta2"]))).sqrt()
        out[f"{name}_new"] = tensor.detach()
    return out


ORACLES = {f.__name__: f for f in (training_step, example1, example2, example3, example4, example5, example6, tiny_transformer, output_logits, dlogits, sgd_step, attention_backward,
                                   relu_backward, residual_backward, embedding_grad, grad_clip, adam_step, output_backward, softmax_backward,
                                   lr_experiment, gradient_check, batch_average, gelu_backward, embedding, qkv_projection, attention_scores, softmax, attention_output,
                                   multi_head, layernorm, layernorm_backward, ffn, ffn_gelu, cross_entropy)}
ORACLES.update(oracles.collected())  # newer types keep their oracle in tests/oracles/<type>.py


def _close(actual, expected, label):
    expected = torch.as_tensor(expected, dtype=torch.float64)
    actual = torch.as_tensor(actual, dtype=torch.float64).reshape(expected.shape)
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=1e-12, msg=lambda m: f"{label}: {m}")


@pytest.mark.parametrize("type_name", by_type(sorted(ORACLES)))
def test_key_matches_torch(type_name):
    """The contract's first draws of the type (tests/draws.py), 60 per option set and at most 600, as JSON keys."""
    count = min(DRAWS_PER_OPTION_SET * len(problem_types()[type_name].option_sets()), MOST_DRAWS)
    # Last draw first: the contract test, in another worker maybe at the same time, draws them first to last, and
    # each reads the other's draws back from where they cross (tests/draws.py).
    for seed in reversed(range(count)):
        problem = key_json_of(type_name, seed)["problems"][0]
        facts = {**problem["facts"], **problem["key_facts"]}  # what the statement and the key alone print
        expected = ORACLES[type_name](problem["given"], facts, problem["options"])
        answers = blanks_by_name(problem)
        assert set(answers) == set(expected), (type_name, seed, sorted(answers))
        for name, value in expected.items():
            if isinstance(value, str):  # a choice blank
                assert answers[name] == value, (type_name, seed, name)
            else:
                _close(answers[name], value, f"{type_name} {problem['options']} seed {seed} {name}")


def test_torch_comparison_can_fail():
    key = key_json(["layernorm"], 2)
    problem = key["problems"][0]
    expected = layernorm(problem["given"], problem["facts"], problem["options"])
    with pytest.raises(AssertionError):
        _close(expected["y"] + 1e-6, expected["y"], "perturbed")


# ----- traps from the source material -------------------------------------------------------------


def test_layernorm_never_so_flat_that_epsilon_matters():
    """The seed's trap: a variance below ε. Real ε = 1e-5 must change no answer by more than 1e-5."""
    for seed in range(300):
        problem = key_json(["layernorm:rows=2"], seed)["problems"][0]
        x = t(problem["given"]["x"])
        exact = blanks_by_name(problem)["y"]
        real = F.layer_norm(x, (x.shape[1],), t(problem["given"]["gamma"])[0], t(problem["given"]["beta"])[0], eps=1e-5)
        assert torch.allclose(torch.as_tensor(exact), real, rtol=1e-5, atol=1e-5)


def test_printed_softmax_sums_to_one_at_the_shown_precision():
    for seed in range(300):
        problem = key_json(["softmax:form=table,length=4"], seed)["problems"][0]
        p = [b for b in problem["blanks"] if b["name"] == "p"]
        # What the key prints is the table route's 4-place value; it sums to 1 like the check says.
        assert sum(Decimal(b["table_value"]) for b in p) == 1


def test_every_printed_probability_row_sums_to_one_at_4_places():
    """The same trap in the output layer and in the tiny transformer's attention weights (visible entries)."""
    for seed in range(100):
        for spec, names in (("output_logits:positions=2", ["p"]), ("tiny_transformer", ["A1", "A2"])):
            problem = key_json([spec], seed)["problems"][0]
            for name in names:
                rows: dict[int, list] = {}
                for blank in problem["blanks"]:
                    if blank["name"] == name:
                        rows.setdefault(blank["index"][0], []).append(Decimal(blank["table_value"]))
                for row in rows.values():
                    assert sum(row) == 1, (spec, seed, name, row)


def test_printed_e_table_is_right_at_4_places():
    for seed in range(100):
        problem = make_problem("softmax", {"form": "table"}, f"table/{seed}")
        table = problem.facts["e_table"]
        ks = [int(k) for k in re.search(r"k & ([-\d &]+) \\\\", table).group(1).split("&")]
        values = [float(v) for v in re.search(r"e\^\{k\} & ([\d. &]+) \\end", table).group(1).split("&")]
        for k, value in zip(ks, values, strict=True):
            assert abs(value - math.exp(k)) <= 0.5e-4, (k, value)


def test_printed_phi_table_is_right_at_4_places():
    table = make_problem("ffn_gelu", {"difficulty": "hard"}, "gelu/1").facts["phi_table"]
    xs = [k / 2 for k in range(-4, 5) if k != 0]  # the grid the sheet promises at 'hard'
    cdf = [float(v) for v in re.search(r"\\Phi\(x\) & ([\d. &]+)", table).group(1).split("&")]
    pdf = [float(v) for v in re.search(r"\\varphi\(x\) & ([\d. &]+)", table).group(1).split("&")]
    for x, c, d in zip(xs, cdf, pdf, strict=True):
        assert abs(c - 0.5 * (1 + math.erf(x / math.sqrt(2)))) <= 0.5e-4, x
        assert abs(d - math.exp(-x * x / 2) / math.sqrt(2 * math.pi)) <= 0.5e-4, x


def test_example1_given_weights_are_an_honest_rounding():
    for seed in range(100):
        problem = key_json(["example1"], seed)["problems"][0]
        true = blanks_by_name(problem)["a"]
        given = t(problem["facts"]["given_weights"])
        assert float((given - torch.as_tensor(true)).abs().max()) <= 0.15, (seed, true, given)


def test_tiny_transformer_given_values_are_honest_roundings():
    """Each Given weight is within 0.05 of the true 4-place weight, each Given probability within 0.015."""
    for seed in range(60):
        problem = key_json(["tiny_transformer"], seed)["problems"][0]
        answers, facts = blanks_by_name(problem), problem["facts"]
        true_weights = torch.cat([torch.as_tensor(answers[f"A{h + 1}"]) for h in range(2)])
        assert float((t(facts["given_weights"]) - true_weights).abs().max()) <= 0.05, seed
        assert float((t(facts["given_p"]) - torch.as_tensor(answers["p_target"])).abs().max()) <= 0.015, seed
        # A token the causal mask lets a query see keeps some weight in the Given box.
        visible = ~torch.triu(torch.ones(3, 3, dtype=torch.bool), diagonal=1)
        assert bool((t(facts["given_weights"]).reshape(2, 3, 3)[:, visible] > 0).all()), seed


def test_tiny_transformer_heads_attend_differently():
    for seed in range(60):
        answers = blanks_by_name(key_json(["tiny_transformer"], seed)["problems"][0])
        assert not torch.allclose(torch.as_tensor(answers["A1"]), torch.as_tensor(answers["A2"])), seed


def test_tiny_transformer_add_and_norm_matches_torch():
    """norm=post: every blank of the sheet (R₁, both LayerNorms' μ, σ and outputs among them) is torch's value, and
    each LayerNorm's input normalises to rows of ±1 exactly (F.layer_norm without γ, β)."""
    specs = [f"tiny_transformer:norm=post,tokens={n},heads={h}" for n in (2, 3) for h in (1, 2)]
    for seed in range(15):
        for problem in key_json(specs, seed)["problems"]:
            expected = tiny_transformer(problem["given"], problem["facts"], problem["options"])
            answers = blanks_by_name(problem)
            assert {"R1", "mu", "sigma", "H1", "R2", "mu2", "sigma2", "H2"} <= set(answers) == set(expected)
            for name, value in expected.items():
                _close(answers[name], value, f"{problem['options']} seed {seed} {name}")
            for name in ("R1", "R2"):
                xhat = F.layer_norm(expected[name], (4,), eps=0.0)
                _close(xhat.abs(), torch.ones_like(xhat), f"seed {seed} x̂ of {name}")
                _close(xhat.sum(-1), torch.zeros(xhat.shape[0], dtype=torch.float64), f"seed {seed} Σx̂ of {name}")
