"""Step Law (Li et al. 2025, "Predictable Scale, Part I") and Kaplan et al. 2020 beside a CPU-sized sweep.

The Step Law fits the best AdamW learning rate as lr_opt = 1.79 N^-0.713 D^0.307 (N non-embedding parameters,
D training tokens) and the best batch as B_opt = 0.58 D^0.571 tokens; Kaplan et al.'s critical batch is
B_crit(L) = 2e8 / L^4.76 tokens. Here: the calculators of :mod:`workbench.lr_batch` against the papers' own
worked values, and a small sweep (one-hidden-layer MLPs on digits, Adam, several widths and step budgets, a
factor-2 learning-rate grid) fitted with the same form log lr* = c + a log N + b log D. The verdict checks the
*signs* of the fitted exponents against the paper's and states their sizes; it does not claim agreement of
the sizes, which a study this small cannot show (a factor-2 grid over a few sizes).
"""

from __future__ import annotations

import math

import jax
import numpy as np

from workbench import config
from workbench import lr_batch as lb
from workbench.data import digits
from workbench.nets import MLP
from workbench.papers.base import SIGMAS, Check, Reproduction

REFERENCE = ("Li et al. 2025, Predictable Scale: Part I - Optimal Hyperparameter Scaling Law in Large Language "
             "Model Pretraining (the Step Law), arXiv:2503.04715; Kaplan et al. 2020, Scaling Laws for Neural "
             "Language Models, arXiv:2001.08361")
CLAIM = ("The best learning rate falls with model size (N^-0.713) and rises with the training budget (D^0.307); "
         "the best batch grows with the budget (D^0.571).")
PAPER = {"N": -0.713, "D": 0.307}


def run(*, fast: bool, key: int) -> Reproduction:
    from workbench.training import train_mlp

    checks, notes = [], []
    lr_v, b_v = lb.step_law(1e9, 1e11)
    checks.append(Check("step_law lr(N=1e9, D=1e11)", float(lr_v), 1.79 * 1e9 ** -0.713 * 1e11 ** 0.307, 1e-12,
                        "the calculator against the formula evaluated independently (round-off only)"))
    checks.append(Check("step_law B(D=1e11) [tokens]", float(b_v), 0.58 * 1e11 ** 0.571, 1e-3,
                        "the calculator against the formula evaluated independently (round-off only)"))
    checks.append(Check("kaplan B_crit(L=3) [tokens]", float(lb.kaplan_critical_batch(3.0)), 2e8 / 3.0 ** 4.76, 1e-3,
                        "the calculator against Kaplan et al.'s eq. 5.3 evaluated independently"))
    widths = [16, 32, 64, 128] if fast else [16, 32, 64, 128, 256, 512]
    budgets = [25, 50, 100] if fast else [50, 100, 200, 400, 800]
    lrs = np.geomspace(2.0 ** -12, 2.0 ** 0, 13)
    batch = 64
    seeds = 2 if fast else 4
    with config.precision("float32"):
        device = config.device_report()
        data = digits(jax.random.PRNGKey(key), 512, 64, targets="label")
        best = np.zeros((len(widths), len(budgets)))
        nparams = []
        curves = {}
        for i, w in enumerate(widths):
            net = MLP(depth=1, width=w, activation="relu", w_std=2 ** 0.5, b_std=0.0, out_dim=10)
            nparams.append(net.num_params(64))
            res = train_mlp(net, (data.x_train, data.y_train), loss="cross_entropy", reduction="mean",
                            optimizer="adam", lrs=list(lrs), seeds=tuple(range(key, key + seeds)),
                            num_steps=max(budgets), batch_size=batch, record_every=min(budgets), progress=False)
            steps = list(np.asarray(res.steps))
            loss = np.asarray(res.train_loss)  # (L, S, R)
            for j, t in enumerate(budgets):
                m = np.where(np.isfinite(loss[:, :, steps.index(t)]), loss[:, :, steps.index(t)], np.inf).mean(1)
                best[i, j] = lrs[int(np.argmin(m))]
                curves[(w, t)] = m
    n_arr = np.repeat(np.asarray(nparams, float), len(budgets))
    d_arr = np.tile(np.asarray(budgets, float) * batch, len(widths))
    design = np.stack([np.ones_like(n_arr), np.log(n_arr), np.log(d_arr)], 1)
    yv = np.log(best.ravel())
    coef, *_ = np.linalg.lstsq(design, yv, rcond=None)
    resid = yv - design @ coef
    dof = max(len(yv) - 3, 1)
    # the argmin sits on a factor-2 grid: a uniform rounding error of variance (log 2)^2 / 12 per point, added to
    # the residual variance so the exponents' standard errors cannot come out smaller than the grid allows
    var = max(float(resid @ resid) / dof, 0.0) + math.log(2) ** 2 / 12
    cov = var * np.linalg.inv(design.T @ design)
    se = np.sqrt(np.diag(cov))
    for idx, name in ((1, "N"), (2, "D")):
        sign = math.copysign(1.0, PAPER[name])
        # the fitted exponent times the paper's sign must exceed SIGMAS standard errors: at_least with the bar as
        # the prediction and no further slack
        checks.append(Check(f"sweep: sign of the lr exponent of {name} (paper {PAPER[name]:+.3f})",
                            float(sign * coef[idx]), SIGMAS * float(se[idx]), 0.0,
                            f"the fitted exponent times the paper's sign must be positive by at least {SIGMAS:g} "
                            f"standard errors (se {se[idx]:.2g}: fit residuals plus the factor-2 grid's rounding)",
                            kind="at_least"))
        checks.append(Check(f"sweep: lr exponent of {name}", float(coef[idx]), PAPER[name], SIGMAS * float(se[idx]),
                            "reported beside the paper's value; no agreement is claimed (different models, data, "
                            "optimizer settings and a tiny range of N and D)", stderr=float(se[idx]),
                            in_verdict=False))
    for c in checks:
        if c.in_verdict and c.name.startswith("sweep") and not c.passed:
            what = ("has the paper's sign but is not resolved beyond " f"{SIGMAS:g} standard errors"
                    if c.measured > 0 else "has the opposite sign to the paper's")
            notes.append(f"{c.name}: the fitted exponent {what} (sign x exponent = {c.measured:+.3f}, bar "
                         f"{c.predicted:.3f}); this small sweep does not show the claim.")
    setting = (f"One-hidden-layer relu MLPs (widths {widths}, N = {nparams} parameters) trained by Adam on 512 "
               f"digits with batch {batch} for {budgets} steps (D = steps x batch examples), {seeds} seeds, "
               f"a factor-2 lr grid; float32 for the sweep. The paper fits LLMs from 60M to 1B parameters on up "
               f"to 1T tokens with AdamW and a schedule: far outside this range.")
    data_out = {"best_lr": best, "widths": np.asarray(widths), "num_params": np.asarray(nparams),
                "budgets": np.asarray(budgets), "batch": batch, "lrs": lrs, "fit": coef, "fit_se": se,
                "step_law": {"N": np.geomspace(1e7, 1e10, 30), "D": np.array([1e9, 1e10, 1e11])}}
    return Reproduction("step_law_2025", REFERENCE, CLAIM, setting, checks, data_out, device, "float32", fast, key,
                        {"widths": widths, "budgets": budgets, "seeds": seeds, "batch": batch}, notes)
