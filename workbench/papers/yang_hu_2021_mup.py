"""Yang & Hu 2021, feature learning in infinite-width networks (muP), on small MLPs.

(a) Feature-update size after one SGD step against width: the root-mean-square change of the last hidden
layer's activations grows like width^{+1/2} in the standard parametrization (SP, fixed learning rate), falls
like width^{-1/2} in the NTK parametrization and stays O(1) in muP (Yang & Hu 2021, Table 1 / section 5).
(b) NTK drift during full-batch GD: ||Theta_T - Theta_0||_F / ||Theta_0||_F falls like width^{-1/2} in the
NTK parametrization (lazy training) and stays O(1) in muP.
(c) muTransfer (Yang et al. 2022): the best Adam learning rate on digits is stable across widths in muP and
moves (like 1/width) in SP.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from workbench.data import digits
from workbench.nets import MLP
from workbench.papers._common import keys, ntk_matrix, verification
from workbench.papers.base import Check, Reproduction, slope_check, slope_with_stderr

REFERENCE = ("Yang & Hu 2021, Tensor Programs IV: Feature Learning in Infinite-Width Neural Networks, ICML; "
             "Yang et al. 2022, Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter "
             "Transfer")
CLAIM = ("Only muP keeps both feature updates and kernel drift O(1) as width grows (SP's features blow up like "
         "width^1/2, NTK's freeze like width^-1/2), and so muP's best learning rate transfers across widths.")
SLOPES = {"standard": 0.5, "ntk": -0.5, "mup": 0.0}


@functools.lru_cache(maxsize=32)
def _update_fn(net: MLP, in_dim: int):
    """jit: seeds (S,) keys, x, y, lr -> RMS change of the last hidden pre-activations after one SGD step."""
    mult = net.lr_multipliers(in_dim, "sgd")

    def one(key, x, y, lr):
        params = net.init(key, in_dim)
        grads = jax.grad(lambda p: 0.5 * jnp.mean((net.apply(p, x) - y) ** 2))(params)
        new = jax.tree_util.tree_map(lambda p, g, m: p - lr * m * g, params, grads, mult)
        h0, h1 = net.preactivations(params, x)[-2], net.preactivations(new, x)[-2]
        return jnp.sqrt(jnp.mean((h1 - h0) ** 2))

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))


@functools.lru_cache(maxsize=32)
def _gd_fn(net: MLP, in_dim: int, steps: int):
    mult = net.lr_multipliers(in_dim, "sgd")

    def run(p, x, y, lr):
        def step(p, _):
            g = jax.grad(lambda q: 0.5 * jnp.mean((net.apply(q, x) - y) ** 2))(p)
            return jax.tree_util.tree_map(lambda a, b, m: a - lr * m * b, p, g, mult), None
        return jax.lax.scan(step, p, None, length=steps)[0]

    return jax.jit(run)


def _drift(net: MLP, key: jax.Array, x: jax.Array, y: jax.Array, lr: float, steps: int) -> float:
    """||Theta_T - Theta_0||_F / ||Theta_0||_F after ``steps`` full-batch GD steps of the mean MSE."""
    params = net.init(key, x.shape[1])
    k0 = ntk_matrix(net, params, x)
    kt = ntk_matrix(net, _gd_fn(net, x.shape[1], steps)(params, x, y, lr), x)
    return float(np.linalg.norm(kt - k0) / np.linalg.norm(k0))


def _best_lr_adam(net: MLP, data, lrs: np.ndarray, steps: int, seeds: int) -> tuple[float, np.ndarray]:
    from workbench.training import train_mlp

    res = train_mlp(net, (data.x_train, data.y_train), loss="cross_entropy", reduction="mean", optimizer="adam",
                    lrs=list(lrs), seeds=tuple(range(seeds)), num_steps=steps, record_every=steps, progress=False)
    final = np.asarray(res.train_loss)[:, :, -1]  # (L, S)
    final = np.where(np.isfinite(final), final, np.inf)
    mean = final.mean(axis=1)
    return float(lrs[int(np.argmin(mean))]), mean


def run(*, fast: bool, key: int) -> Reproduction:
    with verification() as (device, precision):
        widths = np.array([64, 256, 1024]) if fast else np.array([64, 128, 256, 512, 1024, 2048])
        seeds = 4 if fast else 12
        d, batch = 16, 8
        kx, ky = jax.random.split(jax.random.PRNGKey(key + 1000))
        x = jax.random.normal(kx, (batch, d))
        y = jnp.sign(jax.random.normal(ky, (batch, 1)))
        # (a) one SGD step, base lr 0.05 (the same number in every parametrization; muP's width factors are in
        # its lr multipliers). Depth 2: the last hidden layer has a width x width weight matrix.
        upd = {}
        for par in SLOPES:
            vals = np.zeros((len(widths), seeds))
            for i, w in enumerate(widths):
                net = MLP(depth=2, width=int(w), activation="tanh", w_std=1.0, b_std=0.0, parametrization=par)
                vals[i] = np.asarray(_update_fn(net, d)(jnp.stack(keys(key + 17 * i, seeds)), x, y, 0.05))
            upd[par] = vals
        # (b) NTK drift after full-batch GD
        dw = np.array([64, 256, 1024]) if fast else np.array([64, 128, 256, 512, 1024, 2048])
        dseeds, dsteps = (3, 20) if fast else (6, 50)
        drift = {}
        for par, lr in (("ntk", 1.0), ("mup", 0.5)):
            vals = np.zeros((len(dw), dseeds))
            for i, w in enumerate(dw):
                net = MLP(depth=2, width=int(w), activation="tanh", w_std=1.0, b_std=0.0, parametrization=par)
                for s, k in enumerate(keys(key + 31 * i, dseeds)):
                    vals[i, s] = _drift(net, k, x, y, lr, dsteps)
            drift[par] = vals
        # (c) muTransfer of Adam's learning rate on digits (one hidden layer, full batch)
        tw = [64, 256, 1024]
        lrs = np.geomspace(2.0 ** -12, 2.0 ** 0, 13)  # factor-2 grid: one grid step = a factor 2
        data = digits(jax.random.PRNGKey(key), 256 if fast else 512, 64, targets="label")
        tsteps, tseeds = (40, 2) if fast else (300, 3)
        transfer = {}
        for par in ("standard", "mup"):
            best, curves = [], []
            for w in tw:
                net = MLP(depth=1, width=w, activation="relu", w_std=2 ** 0.5, b_std=0.0, parametrization=par,
                          out_dim=10)
                b, c = _best_lr_adam(net, data, lrs, tsteps, tseeds)
                best.append(b)
                curves.append(c)
            transfer[par] = (np.array(best), np.array(curves))

    checks, notes = [], []
    for par, pred in SLOPES.items():
        sl, se = slope_with_stderr(widths, upd[par])
        checks.append(slope_check(f"feature_update_slope_{par}", sl, se, pred,
                                  f"widths {widths.min()}-{widths.max()}, {seeds} seeds"))
    for par, pred in (("ntk", -0.5), ("mup", 0.0)):
        sl, se = slope_with_stderr(dw, drift[par])
        checks.append(slope_check(f"{par}_drift_slope", sl, se, pred,
                                  f"widths {dw.min()}-{dw.max()}, {dseeds} seeds, {dsteps} GD steps"))
    sl, se = slope_with_stderr(dw, drift["ntk"])
    typical = slope_check("ntk_drift_slope_typical", sl, se, -1.0, "the same runs", in_verdict=False)
    checks.append(Check(typical.name, sl, -1.0, typical.tolerance, "reported: Dyer & Gur-Ari 2019 predict the typical "
                        "drift of the NTK during training to be O(1/width), faster than the O(width^-1/2) bound the "
                        "issue states; " + typical.reason, stderr=se, in_verdict=False, resolution=typical.resolution))
    if not checks[3].passed and checks[3].resolved:
        notes.append(f"The NTK-parametrized drift falls with slope {checks[3].measured:.2f}, not -1/2: the "
                     "width^-1/2 rate is an upper bound (Lee et al. 2019); the typical drift is O(1/width) "
                     "(Dyer & Gur-Ari 2019), so this toy does not show the -1/2 slope the issue asks for.")
    shift = {p: int(round(np.ptp(np.log2(transfer[p][0])))) for p in transfer}
    checks.append(Check("mup_best_lr_shift_grid_steps", shift["mup"], 0.0, 1.0,
                        "the lr grid has factor-2 steps: the best lr is known to one grid step, so a shift of at "
                        "most one step is no measurable shift", kind="at_most"))
    checks.append(Check("sp_best_lr_shift_grid_steps", shift["standard"], 2.0, 0.0,
                        "SP's shift must exceed one grid step (the measurement's resolution) to count as a shift; "
                        "the prediction for widths 64 -> 1024 is log2(16) = 4 steps", kind="at_least"))
    if not checks[-1].passed:
        notes.append(f"SP's best Adam learning rate moved by {shift['standard']} grid step(s) across widths "
                     f"{tw[0]}-{tw[-1]} in this run ({tsteps} steps): the toy does not show the expected shift "
                     "(about log2(16) = 4 steps for a 1/width rule).")
    if not all(c.resolved for c in checks):
        notes.append("Some slopes are not resolved by the seeds used: their verdict is 'unresolved', not a pass.")
    setting = (f"Tanh MLPs with 2 hidden layers on {batch} Gaussian inputs in {d} dimensions (one SGD step, base lr "
               f"0.05; then {dsteps} full-batch GD steps) and relu MLPs with one hidden layer trained by Adam for "
               f"{tsteps} full-batch steps on {data.x_train.shape[0]} digits; the paper's claims are about the "
               f"infinite-width limit and its transfer experiments use Transformers and ResNets at far larger "
               f"widths and budgets.")
    data_out = {
        "feature_update": {"widths": widths, **{p: upd[p] for p in upd}, "predicted_slopes": SLOPES},
        "drift": {"widths": dw, **drift},
        "transfer": {"widths": np.array(tw), "lrs": lrs,
                     **{p: {"best": transfer[p][0], "loss": transfer[p][1]} for p in transfer}},
    }
    return Reproduction("yang_hu_2021_mup", REFERENCE, CLAIM, setting, checks, data_out, device, precision, fast,
                        key, {"widths": widths.tolist(), "seeds": seeds, "drift_widths": dw.tolist(),
                              "drift_steps": dsteps, "transfer_widths": tw, "adam_steps": tsteps}, notes)
