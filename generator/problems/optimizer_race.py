"""SGD, momentum and Adam racing over the same gradients: every step's θ (and the moments), a table and a plot."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from functools import cache, lru_cache

import sympy
from sympy import ImmutableMatrix, Rational

from generator.core.problem import Bounds, Contract, Part, Problem, Quantity, Step, Tex
from generator.core.readings import PLACES, Reading, round_places
from generator.core.registry import Option
from generator.core.rng import Rng
from generator.documents.render import factor_tex, number_tex

TITLE = "An optimizer race: SGD, momentum and Adam"
OPTIONS = [
    Option("steps", ("3", "5"), "5", "steps each optimizer takes"),
]
# The source's Exercise 4 (Stage 10): one parameter, these gradients whatever θ is, η = 0.01, momentum 0.9 (PyTorch's
# form), Adam with β = (0.9, 0.999). From θ₀ = 0.5 the race ends at 0.5050, 0.5129083 and about 0.5497.
SOURCE_GRADIENTS = tuple(Fraction(k, 100) for k in (-10, -8, -12, -9, -11))
SOURCE_START = Fraction(1, 2)
SCALES = (Fraction(1, 2), Fraction(1), Fraction(3, 2), Fraction(2))
STARTS = tuple(Fraction(k, 10) for k in range(-9, 10) if k)
LR, MU, BETA1, BETA2 = Fraction(1, 100), Fraction(9, 10), Fraction(9, 10), Fraction(999, 1000)
DIGITS = 60  # the working precision of the key's decimals: far beyond the 10 digits it prints
SIGNIFICANT = 10  # m̂ and v̂ are written with this many significant digits (or exactly)
NEAR = Fraction(1, 10**30)  # a 4-place θ this close to a rounding boundary is never drawn


def _entries(p: Problem, names) -> list:
    return [x for name in names for x in p.answer(name)]


def _steps(p: Problem) -> range:
    return range(1, int(p.options["steps"]) + 1)


CONTRACT = Contract(
    # θ₀ in tenths, the gradients in hundredths (scaled by 1/2 … 2: up to 3/2 · 0.11 = 33/200); η, μ and the β are key
    # facts (printed in the statement).
    given=Bounds(33, 200, Rational(5)),  # and the number of steps, a stated fact
    # Calculator values: the moments and their bias-corrected forms are exact fractions with long decimals
    # (v₅ = 5090399355361/10¹⁷ for the source's gradients); only their size is small.
    intermediate=Bounds(10**40, 10**40, Rational(3)),
    answer=Bounds(10**40, 10**40, Rational(3)),
    rational_only=False,  # Adam's θ holds square roots
    forbidden={
        "a gradient entry is 0 (a flipped sign would not show)": lambda p: any(
            0 in list(p.given_value(f"g{t}")) for t in _steps(p)),
        "the two coordinates get the same gradients (a swapped entry would not show)": lambda p: any(
            p.given_value(f"g{t}")[0] == p.given_value(f"g{t}")[1] for t in _steps(p)),
        "an entry of θ₀ is 0 (a dropped θ would not show)": lambda p: 0 in list(p.given_value("theta0")),
        "a momentum buffer or a first moment has a 0 (that entry would not move)": lambda p: 0 in _entries(
            p, [f"{k}{t}" for k in ("b", "m") for t in _steps(p)]),
    },
)


def _fraction(x: Rational | Fraction) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(int(x.p), int(x.q))


def _rational(x: Fraction) -> Rational:
    return Rational(x.numerator, x.denominator)


def _decimal(x: Fraction) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = DIGITS
        return Decimal(x.numerator) / Decimal(x.denominator)


def _adam_step(m_hat: Fraction, v_hat: Fraction) -> Fraction:
    """η·m̂/√v̂ to DIGITS digits, as a Fraction."""
    with localcontext() as ctx:
        ctx.prec = DIGITS
        return Fraction(_decimal(LR * m_hat) / _decimal(v_hat).sqrt())


def _near_boundary(x: Fraction) -> bool:
    """x within NEAR of a half unit of the 4th place: 60 digits could not say how it rounds."""
    unit = Fraction(1, 10**PLACES)
    return abs(abs(x - round_places(x)) - unit / 2) < NEAR


@lru_cache(maxsize=65536)
def _significant(x: Fraction, digits: int = SIGNIFICANT) -> str:
    """x to `digits` significant digits, plain (no exponent)."""
    d = _decimal(x)
    if d == 0:
        return "0"
    quantum = Decimal(1).scaleb(d.adjusted() - digits + 1)
    return format(d.quantize(quantum, rounding=ROUND_HALF_UP), "f")


@lru_cache(maxsize=65536)
def _places(x: Fraction, places: int) -> str:
    return format(_decimal(x).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), "f")


def _run(theta0: Fraction, grads: tuple[Fraction, ...]) -> dict | None:
    """All three races in Fractions (Adam's θ to DIGITS digits, and the sheet's 4-place route as a Reading)."""
    sgd, mom, buf, adam_m, adam_v, m_hat, v_hat, steps = [], [], [], [], [], [], [], []
    theta_s = theta_m = theta0
    b = m = v = Fraction(0)
    reading = Reading.exactly(theta0)
    readings, exact_theta = [], theta0
    for t, g in enumerate(grads, 1):
        theta_s -= LR * g
        b = MU * b + g
        theta_m -= LR * b
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        mh, vh = m / (1 - BETA1 ** t), v / (1 - BETA2 ** t)
        step = _adam_step(mh, vh)
        tiny = Fraction(1, 10**(DIGITS - 10))
        # The sheet's method: the θ written (to 4 places) the step before, minus the step worked at full precision.
        start = reading.rounded() if t > 1 else reading
        reading = start - Reading(step, step - tiny, step + tiny)
        exact_theta -= step
        if _near_boundary(reading.route) or _near_boundary(exact_theta):
            return None
        sgd.append(theta_s), buf.append(b), mom.append(theta_m), adam_m.append(m), adam_v.append(v)
        m_hat.append(mh), v_hat.append(vh), steps.append(step), readings.append(reading)
    return {"sgd": sgd, "b": buf, "mom": mom, "m": adam_m, "v": adam_v, "m_hat": m_hat, "v_hat": v_hat, "step": steps,
            "readings": readings}


def _mm(v: Fraction) -> str:
    """A picture coordinate (millimetres, never negative here) to 2 places, from the exact value."""
    hundredths = round(Fraction(v) * 100)
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def race_plot(series: list[tuple[str, str, list[list[Fraction]]]]) -> Tex:
    """The three paths of θ in the plane (θ[0] across, θ[1] up), drawn with LaTeX's own picture environment."""
    xs = [p[0] for _, _, points in series for p in points]
    ys = [p[1] for _, _, points in series for p in points]
    width, height = 70, 44
    spans = [(max(v) - min(v)) or Fraction(1) for v in (xs, ys)]
    fmt = _mm
    at = lambda p: (Fraction(14) + width * (p[0] - min(xs)) / spans[0], Fraction(10) + height * (p[1] - min(ys)) / spans[1])  # noqa: E731
    parts = [r"\setlength{\unitlength}{1mm}\begin{picture}(125,62)",
             r"\put(12,6){\line(1,0){" + str(width + 6) + "}}", r"\put(12,6){\line(0,1){" + str(height + 8) + "}}",
             r"\put(49,1){\makebox(0,0){\scriptsize $\theta[0]$}}", r"\put(12,61){\makebox(0,0){\scriptsize $\theta[1]$}}",
             r"\put(14,4){\makebox(0,0)[t]{\scriptsize " + _places(min(xs), PLACES) + "}}",
             f"\\put({width + 14},4){{\\makebox(0,0)[t]{{\\scriptsize {_places(max(xs), PLACES)}}}}}",
             r"\put(11,10){\makebox(0,0)[r]{\scriptsize " + _places(min(ys), PLACES) + "}}",
             f"\\put(11,{height + 10}){{\\makebox(0,0)[r]{{\\scriptsize {_places(max(ys), PLACES)}}}}}"]
    for k, (name, marker, points) in enumerate(series):
        placed = [at(p) for p in points]
        for x, y in placed:
            parts.append(f"\\put({fmt(x)},{fmt(y)}){{\\makebox(0,0){{{marker}}}}}")
        for (x1, y1), (x2, y2) in zip(placed, placed[1:]):
            parts.append(f"\\qbezier({fmt(x1)},{fmt(y1)})({fmt((x1 + x2) / 2)},{fmt((y1 + y2) / 2)})({fmt(x2)},{fmt(y2)})")
        parts.append(f"\\put(96,{50 - 7 * k}){{\\makebox(0,0){{{marker}}}}}\\put(99,{50 - 7 * k})"
                     f"{{\\makebox(0,0)[l]{{\\scriptsize {name}}}}}")
    start = at(series[0][2][0])
    parts.append(f"\\put({fmt(start[0] + 2)},{fmt(start[1] - 3)}){{\\makebox(0,0)[l]{{\\scriptsize $\\theta_0$}}}}")
    parts.append(r"\end{picture}")
    return Tex(r"\mbox{" + "".join(parts) + "}")


def _q(name: str, symbol: str, value, reading=None, exact_decimal: bool = False) -> Quantity:
    return Quantity(name, Tex(symbol), value, reading=reading, exact_decimal=exact_decimal)


COORDINATES = 2  # θ is a row of two parameters: every quantity a 1×2 row, each entry the source's exercise


def _row(values) -> ImmutableMatrix:
    return ImmutableMatrix([[_rational(x) for x in values]])


def _draw(rng: Rng, steps: int, scale: Fraction) -> tuple[Fraction, tuple[Fraction, ...], dict]:
    """One coordinate: θ₀, the source's gradients times the scale with drawn signs, and its race."""
    while True:
        theta0 = rng.choice(STARTS)
        # The scale keeps v̂_t the source's up to a square, so Adam's exact θ keeps the source's square roots (see
        # _adam_terms); Adam's steps do not change with the scale, one more thing the race shows.
        grads = tuple(g * scale * rng.choice([-1, 1]) for g in SOURCE_GRADIENTS[:steps])
        run = _run(theta0, grads)
        if run is not None and 0 not in run["b"] and 0 not in run["m"]:
            return theta0, grads, run


def _lines(j: int, theta0: Fraction, grads, run, route, steps: int) -> dict[str, tuple[Tex, ...]]:
    """Each step's working for coordinate j."""
    ts = range(1, steps + 1)
    e = f"[0,{j}]"
    prev = lambda xs, t: xs[t - 2] if t > 1 else theta0  # noqa: E731
    zero = Fraction(0)
    return {
        "sgd": tuple(Tex(f"\\theta^{{\\mathrm{{SGD}}}}_{{{t}}}{e} = {_text(prev(run['sgd'], t))} - 0.01 \\cdot {_paren(grads[t - 1])} "
                         f"= {_text(run['sgd'][t - 1])}") for t in ts),
        "b": tuple(Tex(f"b_{{{t}}}{e} = 0.9 \\cdot {_paren(run['b'][t - 2] if t > 1 else zero)} + {_paren(grads[t - 1])} "
                       f"= {_text(run['b'][t - 1])}") for t in ts),
        "mom": tuple(Tex(f"\\theta^{{\\mathrm{{mom}}}}_{{{t}}}{e} = {_text(prev(run['mom'], t))} - 0.01 \\cdot "
                         f"{_paren(run['b'][t - 1])} = {_text(run['mom'][t - 1])}") for t in ts),
        "m": tuple(Tex(f"m_{{{t}}}{e} = 0.9 \\cdot {_paren(run['m'][t - 2] if t > 1 else zero)} + 0.1 \\cdot "
                       f"{_paren(grads[t - 1])} = {_text(run['m'][t - 1])}") for t in ts),
        "v": tuple(Tex(f"v_{{{t}}}{e} = 0.999 \\cdot {_text(run['v'][t - 2] if t > 1 else zero)} + 0.001 \\cdot "
                       f"{_paren(grads[t - 1])}^2 = {_text(run['v'][t - 1])}") for t in ts),
        "hat": tuple(Tex(f"\\hat m_{{{t}}}{e} = \\frac{{{_text(run['m'][t - 1])}}}{{{_text(1 - BETA1 ** t)}}} \\approx "
                         f"{_significant(run['m_hat'][t - 1])}, \\quad \\hat v_{{{t}}}{e} = \\frac{{{_text(run['v'][t - 1])}}}"
                         f"{{{_text(1 - BETA2 ** t)}}} \\approx {_significant(run['v_hat'][t - 1])}") for t in ts),
        "adam": tuple(
            Tex(f"\\theta^{{\\mathrm{{Adam}}}}_{{{t}}}{e} = {_places(route[t - 2], PLACES) if t > 1 else _text(theta0)} - 0.01 \\cdot "
                f"\\frac{{{_significant(run['m_hat'][t - 1])}}}{{\\sqrt{{{_significant(run['v_hat'][t - 1])}}}}} = "
                f"{_places(route[t - 2] if t > 1 else theta0, PLACES)} - {_paren_places(run['step'][t - 1], 8)} "
                f"\\approx {_places(route[t - 1], PLACES)}") for t in ts),
    }


def generate(rng: Rng, options: dict[str, str]) -> Problem:
    """Draw each coordinate's θ₀, scale and signs (the gradients' sizes are the source's); run the three optimizers."""
    steps = int(options["steps"])
    ts = range(1, steps + 1)
    # Different scales for the two coordinates: no gradient entry is then its neighbour's (a swap would not show).
    scales = rng.shuffled(SCALES)[:COORDINATES]
    draws = [_draw(rng, steps, scale) for scale in scales]
    theta0s = [d[0] for d in draws]
    runs = [d[2] for d in draws]
    routes = [[r.rounded().route for r in run["readings"]] for run in runs]
    row = lambda key, t: _row(run[key][t - 1] for run in runs)  # noqa: E731
    # The statement calls these exact decimals, to be written in full: the key prints them so (exact_decimal).
    sgd = [_q(f"sgd{t}", f"\\theta^{{\\mathrm{{SGD}}}}_{{{t}}}", row("sgd", t), exact_decimal=True) for t in ts]
    buf = [_q(f"b{t}", f"b_{{{t}}}", row("b", t), exact_decimal=True) for t in ts]
    mom = [_q(f"mom{t}", f"\\theta^{{\\mathrm{{mom}}}}_{{{t}}}", row("mom", t), exact_decimal=True) for t in ts]
    m = [_q(f"m{t}", f"m_{{{t}}}", row("m", t), exact_decimal=True) for t in ts]
    v = [_q(f"v{t}", f"v_{{{t}}}", row("v", t), exact_decimal=True) for t in ts]
    m_hat = [_q(f"m_hat{t}", f"\\hat m_{{{t}}}", row("m_hat", t)) for t in ts]
    v_hat = [_q(f"v_hat{t}", f"\\hat v_{{{t}}}", row("v_hat", t)) for t in ts]
    exact = [_exact_adam(theta0, grads) for theta0, grads, _ in draws]
    adam = [_q(f"adam{t}", f"\\theta^{{\\mathrm{{Adam}}}}_{{{t}}}", ImmutableMatrix([[e[t - 1] for e in exact]]),
               reading=(tuple(run["readings"][t - 1] for run in runs),)) for t in ts]
    worked = [_lines(j, theta0s[j], draws[j][1], runs[j], routes[j], steps) for j in range(COORDINATES)]
    both = lambda key: worked[0][key] + worked[1][key]  # noqa: E731
    # Each table under its label rather than beside it: Adam's seven columns fill the line by themselves.
    tables = [f"\\begin{{array}}{{l}} \\text{{entry {j}:}} \\\\ " + t + r" \end{array}" for j in range(COORDINATES)
              for t in _table(theta0s[j], draws[j][1], runs[j], routes[j], steps)]
    plot = race_plot([("SGD", r"$\bullet$", [theta0s] + [[run["sgd"][t] for run in runs] for t in range(steps)]),
                      ("momentum", r"$\scriptstyle\blacksquare$", [theta0s] + [[run["mom"][t] for run in runs] for t in range(steps)]),
                      ("Adam", r"$\circ$", [theta0s] + [[route[t] for route in routes] for t in range(steps)])])
    same_sign = all(len({x > 0 for x in grads}) == 1 for _, grads, _ in draws)
    same_sign_check = ((Tex(r"\text{Each coordinate's gradients keep their sign, so its buffer grows: each step is longer "
                            r"than SGD's.}"),) if same_sign else ())
    parts = [
        Part(Tex(f"Plain SGD, $\\theta_t = \\theta_{{t-1}} - \\eta\\,g_t$: give $\\theta^{{\\mathrm{{SGD}}}}_1, \\dots, "
                 f"\\theta^{{\\mathrm{{SGD}}}}_{{{steps}}}$ exactly."), tuple(sgd),
             (Step(text=Tex(r"Each step moves $\theta$ by $\eta$ times the gradient, against its sign (each entry on its own)."),
                   formula=Tex(r"\theta_t = \theta_{t-1} - \eta\,g_t"), lines=both("sgd")),)),
        Part(Tex(f"SGD with momentum $\\mu = 0.9$ (PyTorch's form, $b_0 = 0$): $b_t = \\mu\\,b_{{t-1}} + g_t$, "
                 f"$\\theta_t = \\theta_{{t-1}} - \\eta\\,b_t$. Give $b_1, \\dots, b_{{{steps}}}$ and the $\\theta$'s exactly."),
             tuple(buf) + tuple(mom),
             (Step(text=Tex("The buffer adds each gradient to nine tenths of the buffer before it."),
                   formula=Tex(r"b_t = 0.9\,b_{t-1} + g_t"), lines=both("b")),
              Step(text=Tex(r"Then $\theta$ steps by $\eta$ times the buffer."), formula=Tex(r"\theta_t = \theta_{t-1} - \eta\,b_t"),
                   lines=both("mom"), checks=same_sign_check))),
        Part(Tex(f"Adam's moments ($m_0 = v_0 = 0$): $m_t = \\beta_1 m_{{t-1}} + (1 - \\beta_1)\\,g_t$ and "
                 f"$v_t = \\beta_2 v_{{t-1}} + (1 - \\beta_2)\\,g_t^2$. Give $m_1, \\dots, m_{{{steps}}}$ and "
                 f"$v_1, \\dots, v_{{{steps}}}$ exactly."), tuple(m) + tuple(v),
             (Step(text=Tex("Moving averages of the gradient and of its square, entry by entry."),
                   formula=Tex(r"m_t = 0.9\,m_{t-1} + 0.1\,g_t, \quad v_t = 0.999\,v_{t-1} + 0.001\,g_t^2"),
                   lines=both("m") + both("v")),)),
        Part(Tex(f"Bias correction: $\\hat m_t = m_t/(1 - \\beta_1^t)$ and $\\hat v_t = v_t/(1 - \\beta_2^t)$ for "
                 f"$t = 1, \\dots, {steps}$ (exactly, or to 10 significant digits)."), tuple(m_hat) + tuple(v_hat),
             (Step(text=Tex(r"Divide each moment by $1 - \beta^t$, which undoes the pull toward the zero start; the key "
                            r"prints each to 10 significant digits."),
                   formula=Tex(r"\hat m_t = \frac{m_t}{1 - 0.9^t}, \quad \hat v_t = \frac{v_t}{1 - 0.999^t}"),
                   lines=both("hat"),
                   checks=(Tex(r"\text{At step 1, } \hat m_1 = g_1 \text{ and } \hat v_1 = g_1^2\text{: the first step is } "
                               r"\eta\,\operatorname{sign}(g_1)."),)),)),
        Part(Tex(r"Adam's steps ($\varepsilon = 0$): $\theta_t = \theta_{t-1} - \eta\,\hat m_t/\sqrt{\hat v_t}$. Give "
                 f"$\\theta^{{\\mathrm{{Adam}}}}_1, \\dots, \\theta^{{\\mathrm{{Adam}}}}_{{{steps}}}$ to 4 decimal places, "
                 r"each from the 4-place values you wrote the step before."),
             tuple(adam),
             (Step(text=Tex(r"Each step is $\eta$ times $\hat m_t/\sqrt{\hat v_t}$, a number near $\pm 1$ while the gradients "
                            r"are alike: Adam moves about $\eta$ per step whatever the gradient's size (the two coordinates' "
                            r"gradients differ in scale, not in their steps). From the 4-place $\theta$ of the step before; "
                            r"the step itself at full precision."),
                   formula=Tex(r"\theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t}}"), lines=both("adam")),
              Step(text=Tex(r"The race, coordinate by coordinate: every value, step by step ($v$, $\hat m$, $\hat v$ to "
                            r"6 significant digits, as above to 10; Adam's $\theta$ the sheet's 4-place route, with its full-precision value "
                            r"to 6 places), and the three paths of $\theta$ in the plane."),
                   lines=tuple(Tex(t) for t in tables) + (plot,))),
             decimals=True),
    ]
    given = [_q("theta0", r"\theta_0", _row(theta0s))] + [
        _q(f"g{t}", f"g_{{{t}}}", _row(grads[t - 1] for _, grads, _ in draws)) for t in ts]
    # The statement prints θ₀ and the gradients as the decimals the calculator takes (the JSON key has them exactly), in
    # one small table: a column each, a row per entry.
    head = r"\text{entry} & \theta_0 & " + " & ".join(f"g_{{{t}}}" for t in ts)
    lines = [f"{j} & {_text(theta0s[j])} & " + " & ".join(_text(g) for g in draws[j][1]) for j in range(COORDINATES)]
    facts = {"steps": Rational(steps), "given_text": Tex(r"\begin{array}{c|r|" + "r" * steps + "} " + head + r" \\ \hline "
                                                         + r" \\ ".join(lines) + r" \end{array}")}
    key_facts = {"lr": _rational(LR), "momentum": _rational(MU), "beta1": _rational(BETA1), "beta2": _rational(BETA2),
                 "eps": Rational(0)}
    return Problem.draft(given=given, parts=parts, facts=facts, needs_calculator=True, key_facts=key_facts)


LIMIT = 10**12  # every number in the JSON key's exact strings, and every value on the way, stays below this


def _root_factors(n: int) -> tuple[int, list[int]]:
    """√n as k·√a·√b…: the square part k taken out, the rest cut into factors below LIMIT (a key's numbers stay small)."""
    k, chunks, current = 1, [], 1
    for prime, power in sorted(sympy.factorint(n).items()):
        k *= prime ** (power // 2)
        if power % 2:
            if current * prime >= LIMIT:
                chunks.append(current)
                current = 1
            current *= prime
    if current > 1:
        chunks.append(current)
    return k, chunks


@cache
def _inverse_root(x: Fraction):
    """1/√x for a positive fraction x, exactly: a fraction times unevaluated roots √(a/b) of small coprime a and b.

    Each root pairs a factor of x's denominator with one of its numerator, so that reading the product left to right
    (as the marker does) never passes LIMIT."""
    k_num, num = _root_factors(x.numerator)
    k_den, den = _root_factors(x.denominator)
    width = max(len(num), len(den))
    num, den = num + [1] * (width - len(num)), den + [1] * (width - len(den))
    return Rational(k_den, k_num), [sympy.Pow(Rational(a, b), Rational(1, 2), evaluate=False) for a, b in zip(den, num)]


@cache
def _adam_terms(grads: tuple[Fraction, ...]) -> tuple:
    """−η·m̂_t/√v̂_t for each step, exactly, each an unevaluated product of a fraction and small square roots: written out
    in full, v̂₅ of the source's gradients is 5090399355361/499000999500100, beyond the JSON key's exact strings
    (numbers up to 10¹², 120 symbols)."""
    m = v = Fraction(0)
    terms = []
    for t, g in enumerate(grads, 1):
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        m_hat, v_hat = m / (1 - BETA1 ** t), v / (1 - BETA2 ** t)
        coefficient, roots = _inverse_root(v_hat)
        c = _rational(-LR * m_hat) * coefficient
        positive = sympy.Mul(abs(c), *roots, evaluate=False) if roots else abs(c)
        # A negative term keeps its −1 apart: the printer takes a negative coefficient out of a product by rebuilding
        # it, which would evaluate the roots back into one large square root.
        terms.append(c if not roots else positive if c > 0 else sympy.Mul(sympy.Integer(-1), positive, evaluate=False))
    return tuple(terms)


def _exact_adam(theta0: Fraction, grads: tuple[Fraction, ...]) -> list[sympy.Expr]:
    """Adam's θ_t exactly: θ₀ plus the steps so far, left unevaluated (see _adam_terms)."""
    terms = _adam_terms(grads)
    found = []
    for t in range(1, len(grads) + 1):
        parts = (_rational(theta0),) + terms[:t]
        # A sum of fractions alone (step 1: v̂₁ = g₁², so the step is η·sign(g₁)) is written as one fraction.
        rational = all(isinstance(x, Rational) for x in parts)
        found.append(sympy.Add(*parts) if rational else sympy.Add(*parts, evaluate=False))
    return found


@lru_cache(maxsize=65536)
def _text(x: Fraction) -> str:
    """An exact terminating decimal as written (0.5018, −0.00001639); others to 10 significant digits."""
    d = _decimal(x).normalize()
    if Fraction(d) == x:
        return format(d, "f")
    return _significant(x)


TABLE_DIGITS = 6  # the summary table's significant digits: seven columns must fit the line (the worked lines give 10)


def _trimmed(x: Fraction) -> str:
    """x to TABLE_DIGITS significant digits without trailing zeros (0.0000025, not 0.000002500000000)."""
    text = _significant(x, TABLE_DIGITS)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _paren(x: Fraction) -> str:
    return f"({_text(x)})" if x < 0 else _text(x)


def _paren_places(x: Fraction, places: int) -> str:
    return f"({_places(x, places)})" if x < 0 else _places(x, places)


def _fraction_text(x: Fraction) -> str:
    return _text(x)


def _table(theta0, grads, run, route, steps) -> tuple[str, str]:
    """Every step of the race as two arrays: the gradients with SGD and momentum, then Adam."""
    full, fulls = theta0, []
    for step in run["step"]:
        full -= step
        fulls.append(full)
    first = [r"t & g_t & \theta^{\mathrm{SGD}}_t & b_t & \theta^{\mathrm{mom}}_t",
             " & ".join(["0", "", _text(theta0), "0", _text(theta0)])]
    second = [r"t & m_t & v_t & \hat m_t & \hat v_t & \theta^{\mathrm{Adam}}_t & \text{(full precision)}",
              " & ".join(["0", "0", "0", "", "", _text(theta0), ""])]
    for t in range(1, steps + 1):
        first.append(" & ".join([str(t), _text(grads[t - 1]), _text(run["sgd"][t - 1]), _text(run["b"][t - 1]),
                                 _text(run["mom"][t - 1])]))
        second.append(" & ".join([str(t), _text(run["m"][t - 1]), _trimmed(run["v"][t - 1]),
                                  _trimmed(run["m_hat"][t - 1]), _trimmed(run["v_hat"][t - 1]),
                                  _places(route[t - 1], PLACES), _places(fulls[t - 1], 6)]))
    return tuple(r"\begin{array}{" + "r|" + "r" * (len(rows[0].split("&")) - 1) + "} " + rows[0] + r" \\ \hline "
                 + r" \\ ".join(rows[1:]) + r" \end{array}" for rows in (first, second))
