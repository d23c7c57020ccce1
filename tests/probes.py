"""The bad-input probes of :mod:`tests.probe_api` (issue 20): what a careful user tries, with the outcome
each must have. ``E``: a clear error naming the given words; ``R``: a normal return checked by the snippet's
``assert``; ``C``: a one-line command-line error naming the words, exit status 2; ``CR``: a command line that
exits 0 with ``check(out)`` true. ``cheap=True`` marks the in-process sample of the fast test tier.
"""

from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class Probe:
    name: str
    kind: str  # "error" | "return" | "cli-error" | "cli-return"
    code: str = ""
    argv: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    check: str = ""  # cli-return: a Python expression of ``out`` (stdout) that must be true
    cheap: bool = False  # part of the in-process sample of the fast test tier


def E(name: str, code: str, *words: str, cheap: bool = False) -> Probe:
    return Probe(name, "error", code=code, words=words, cheap=cheap)


def R(name: str, code: str, *, cheap: bool = False) -> Probe:
    return Probe(name, "return", code=code, cheap=cheap)


def C(name: str, argv: str, *words: str, cheap: bool = False) -> Probe:
    return Probe(name, "cli-error", argv=tuple(argv.split()), words=words, cheap=cheap)


def CR(name: str, argv: str, check: str) -> Probe:
    return Probe(name, "cli-return", argv=tuple(argv.split()), check=check)



# ----------------------------------------------------------------------------------------- snippet headers
NP = "import numpy as np\n"
JX = "import jax, jax.numpy as jnp, numpy as np\nkey = jax.random.PRNGKey(0)\n"
NET = JX + "from workbench.nets import MLP\nnet = MLP(depth=1, width=4, activation='relu')\n"
NETP = NET + "params = net.init(key, 3)\nx = np.ones((5, 3))\n"
SPD = NP + "k = np.array([[2.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])\ny = np.ones((3, 1))\n"
LIN = JX + "from workbench.linalg import top_eigenvalues, bottom_eigenvalues, hutchinson_trace, slq_density\n" \
           "A = jnp.diag(jnp.arange(1.0, 7.0))\nop = (lambda v: A @ v, 6)\n"
HESS = NETP + ("from workbench.hessian import mlp_loss, hvp, hessian_operator, loss_and_grad, per_example_grads\n"
               "loss = mlp_loss(net, 'mse')\nbatch = (jnp.ones((5, 3)), jnp.ones((5, 1)))\n")
TRAIN = NET + ("from workbench.training import train, train_mlp\nfrom workbench.hessian import mlp_loss\n"
               "x = jax.random.normal(key, (16, 3)); y = jnp.sin(x[:, :1])\nloss = mlp_loss(net, 'mse')\n"
               "init = lambda k: net.init(k, 3)\n")
SWEEP = TRAIN + ("import tempfile, os, glob\nfrom workbench.experiments import sweep\n"
                 "d = tempfile.mkdtemp()\nkw = dict(batch_sizes=[4, 8], lrs=[0.05, 0.1], seeds=1, num_steps=6, "
                 "record_every=3, optimizers=('sgd',), progress=False, tag=net.describe())\n")
QUAD = JX + "from workbench import lr_batch as lb\nprob = lb.random_noisy_quadratic(key, 4)\n"
SR = QUAD + ("res = lb.simulate_noisy_quadratic(prob, [0.01, 0.1, 1.0, 100.0], [1, 4], num_steps=40, seeds=2)\n")
LAY = JX + "from workbench import layers as L\n"
PARSE = "from workbench.symbolic.expressions import parse_expression as parse\n"
PRICE = "from workbench.symbolic.price import price_check\n"


def _probes() -> list[Probe]:
    p: list[Probe] = []
    # ------------------------------------------------------------------------------------------- kernels
    p += [
        E("kernels.infinite text x", NET + "from workbench.kernels import infinite_kernels as f\nf(net, 'abc')", "x1"),
        E("kernels.infinite empty x", NET + "from workbench.kernels import infinite_kernels as f\nf(net, np.zeros((0, 3)))", "x1", "empty"),
        E("kernels.infinite nan x", NET + "from workbench.kernels import infinite_kernels as f\nf(net, np.array([[np.nan, 1.0]]))", "x1"),
        E("kernels.infinite inf x2", NET + "from workbench.kernels import infinite_kernels as f\nf(net, np.ones((2, 2)), np.array([[np.inf, 1.0]]))", "x2"),
        E("kernels.infinite 1-d x", NET + "from workbench.kernels import infinite_kernels as f\nf(net, np.ones(3))", "x1"),
        E("kernels.infinite feature mismatch", NET + "from workbench.kernels import infinite_kernels as f\nf(net, np.ones((2, 3)), np.ones((2, 4)))", "x2"),
        E("kernels.infinite bad get", NET + "from workbench.kernels import infinite_kernels as f\nf(net, np.ones((2, 3)), get='both!')", "get"),
        E("kernels.infinite net not MLP", NP + "from workbench.kernels import infinite_kernels as f\nf('relu', np.ones((2, 3)))", "net"),
        E("kernels.infinite quadrature float", NET + "from workbench.kernels import infinite_kernels as f\nf(net, np.ones((2, 3)), quadrature_order=2.5)", "quadrature_order"),
        E("kernels.infinite bool x", NET + "from workbench.kernels import infinite_kernels as f\nf(net, np.ones((2, 3), bool))", "x1"),
        E("kernels.infinite block_rows 0", NET + "from workbench.kernels import infinite_kernels as f\nf(net, np.ones((2, 3)), block_rows=0)", "block_rows"),
        R("kernels.infinite symmetric psd", NET + "from workbench.kernels import infinite_kernels as f\n"
          "k = f(net, np.random.default_rng(0).normal(size=(6, 3)))\nfor m in (k.nngp, k.ntk):\n"
          "    m = np.asarray(m); assert m.shape == (6, 6) and np.allclose(m, m.T) and np.linalg.eigvalsh(m).min() > -1e-5", cheap=False),
        E("kernels.empirical text x", NETP + "from workbench.kernels import empirical_ntk as f\nf(net, params, 'x')", "x1"),
        E("kernels.empirical nan x", NETP + "from workbench.kernels import empirical_ntk as f\nf(net, params, np.full((2, 3), np.nan))", "x1"),
        E("kernels.empirical bad method", NETP + "from workbench.kernels import empirical_ntk as f\nf(net, params, x, method='magic')", "method"),
        E("kernels.empirical bad output", NETP + "from workbench.kernels import empirical_ntk as f\nf(net, params, x, output='all')", "output"),
        E("kernels.empirical block_size 0", NETP + "from workbench.kernels import empirical_ntk as f\nf(net, params, x, block_size=0)", "block_size"),
        E("kernels.empirical block_size float", NETP + "from workbench.kernels import empirical_ntk as f\nf(net, params, x, block_size=2.5)", "block_size"),
        E("kernels.empirical wrong features", NETP + "from workbench.kernels import empirical_ntk as f\nf(net, params, np.ones((2, 7)))", "x1"),
        E("kernels.empirical nan params", NETP + "from workbench.kernels import empirical_ntk as f\n"
          "bad = [dict(q) for q in params]; bad[0]['W'] = bad[0]['W'].at[0, 0].set(np.nan)\nf(net, bad, x)", "params"),
        R("kernels.empirical huge refused with estimate", NETP + "import time\nfrom workbench.kernels import empirical_ntk as f\n"
          "t = time.time()\ntry:\n    f(net, params, np.ones((3_000_000, 3)), output='full', memory_limit=2**30)\n    raise AssertionError('no refusal')\n"
          "except ValueError as e:\n    assert 'GiB' in str(e), e\nassert time.time() - t < 20"),
        R("kernels.empirical symmetric", NETP + "from workbench.kernels import empirical_ntk as f\n"
          "k = np.asarray(f(net, params, np.random.default_rng(1).normal(size=(4, 3))))\nassert k.shape == (4, 4) and np.allclose(k, k.T, atol=1e-5)"),
        E("kernels.sphere_eig huge degree", NET + "from workbench.kernels import sphere_eigenvalues as f\nf(net, 3, [10**9])", "degrees"),
        E("kernels.sphere_eig negative degree", NET + "from workbench.kernels import sphere_eigenvalues as f\nf(net, 3, [-1])", "degrees"),
        E("kernels.sphere_eig float degree", NET + "from workbench.kernels import sphere_eigenvalues as f\nf(net, 3, [1.5])", "degrees"),
        E("kernels.sphere_eig dim 1", NET + "from workbench.kernels import sphere_eigenvalues as f\nf(net, 1, [0, 1])", "dim"),
        E("kernels.sphere_eig dim text", NET + "from workbench.kernels import sphere_eigenvalues as f\nf(net, '3', [0, 1])", "dim"),
        E("kernels.sphere_eig which", NET + "from workbench.kernels import sphere_eigenvalues as f\nf(net, 3, [0, 1], which='cntk')", "which"),
        E("kernels.sphere_eig kernel not callable", NP + "from workbench.kernels import sphere_eigenvalues as f\nf(3.0, 3, [0, 1])", "kernel"),
        E("kernels.sphere_mult dim bool", NP + "from workbench.kernels import sphere_multiplicities as f\nf(True, [0, 1])", "dim"),
        E("kernels.sphere_mult empty degrees", NP + "from workbench.kernels import sphere_multiplicities as f\nf(3, [])", "degrees"),
        R("kernels.sphere_mult closed form", NP + "from workbench.kernels import sphere_multiplicities as f\n"
          "m = f(3, [0, 1, 2, 3])\nassert list(np.asarray(m)) == [1, 3, 5, 7], m", cheap=True),
    ]
    # ------------------------------------------------------------------------------------------- nets.MLP
    p += [
        E("nets.MLP depth -1", "from workbench.nets import MLP\nMLP(depth=-1, width=4)", "depth"),
        E("nets.MLP depth float", "from workbench.nets import MLP\nMLP(depth=1.5, width=4)", "depth", cheap=True),
        E("nets.MLP width bool", "from workbench.nets import MLP\nMLP(depth=1, width=True)", "width", cheap=True),
        E("nets.MLP width text", "from workbench.nets import MLP\nMLP(depth=1, width='4')", "width"),
        E("nets.MLP width negative", "from workbench.nets import MLP\nMLP(depth=1, width=-4)", "width"),
        E("nets.MLP unknown activation", "from workbench.nets import MLP\nMLP(depth=1, width=4, activation='swishy')", "activation", cheap=True),
        E("nets.MLP w_std nan", "from workbench.nets import MLP\nMLP(depth=1, width=4, w_std=float('nan'))", "w_std"),
        E("nets.MLP w_std negative", "from workbench.nets import MLP\nMLP(depth=1, width=4, w_std=-1.0)", "w_std"),
        E("nets.MLP b_std text", "from workbench.nets import MLP\nMLP(depth=1, width=4, b_std='0.1')", "b_std"),
        E("nets.MLP parametrization", "from workbench.nets import MLP\nMLP(depth=1, width=4, parametrization='mup!')", "parametrization"),
        E("nets.MLP out_dim 0", "from workbench.nets import MLP\nMLP(depth=1, width=4, out_dim=0)", "out_dim"),
        E("nets.MLP huge width", NET + "MLP(depth=1, width=10**7).init(key, 10**4)", "GiB"),
        E("nets.init in_dim 0", NET + "net.init(key, 0)", "in_dim"),
        E("nets.init in_dim float", NET + "net.init(key, 2.0)", "in_dim"),
        E("nets.init bad key", NET + "net.init(3, 3)", "key"),
        E("nets.apply nan weight", NETP + "bad = [dict(q) for q in params]; bad[1]['W'] = bad[1]['W'].at[0, 0].set(np.nan)\nnet.apply(bad, x)", "layer 1"),
        E("nets.apply inf bias", NETP + "bad = [dict(q) for q in params]; bad[0]['b'] = bad[0]['b'].at[0].set(np.inf)\nnet.apply(bad, x)", "layer 0"),
        E("nets.apply nan input", NETP + "net.apply(params, np.array([[np.nan, 0, 0]]))", "x"),
        E("nets.apply wrong features", NETP + "net.apply(params, np.ones((2, 5)))", "x"),
        E("nets.apply missing layer", NETP + "net.apply(params[:1], x)", "params"),
        E("nets.apply text input", NETP + "net.apply(params, 'x')", "x"),
        E("nets.apply params not list", NETP + "net.apply({'W': 1}, x)", "params"),
        R("nets.apply same key same output", NET + "a = net.apply(net.init(jax.random.PRNGKey(5), 3), np.ones((2, 3)))\n"
          "b = net.apply(net.init(jax.random.PRNGKey(5), 3), np.ones((2, 3)))\nassert np.array_equal(np.asarray(a), np.asarray(b))", cheap=False),
        E("nets.sample_functions num_draws 0", NET + "from workbench.nets import sample_functions as f\nf(net, np.ones((2, 3)), 0, key=key)", "num_draws"),
        E("nets.sample_functions float draws", NET + "from workbench.nets import sample_functions as f\nf(net, np.ones((2, 3)), 2.0, key=key)", "num_draws"),
        E("nets.get_activation unknown", "from workbench.nets import get_activation\nget_activation('sigmoid!!')", "activation"),
    ]
    # ------------------------------------------------------------------------------------------- layers
    p += [
        E("layers.Dense out 0", LAY + "L.Dense(0)", "out", cheap=True),
        E("layers.Dense out float", LAY + "L.Dense(2.5)", "out"),
        E("layers.Dense w_std nan", LAY + "L.Dense(3, w_std=float('nan'))", "w_std"),
        E("layers.Conv channels bool", LAY + "L.Conv(True, 3)", "channels"),
        E("layers.Conv kernel 0", LAY + "L.Conv(4, 0)", "kernel_shape"),
        E("layers.Conv padding", LAY + "L.Conv(4, 3, padding='FULL')", "padding"),
        E("layers.AvgPool window -1", LAY + "L.AvgPool(-1)", "window"),
        E("layers.SelfAttention heads 0", LAY + "L.SelfAttention(0)", "heads"),
        E("layers.LayerNorm eps negative", LAY + "L.LayerNorm(eps=-1.0)", "eps"),
        E("layers.Activation unknown text", LAY + "L.Activation('nope(x)')", "nope"),
        E("layers.serial not a layer", LAY + "L.serial(L.Dense(3), 'relu')", "layer"),
        E("layers.serial empty", LAY + "L.serial()", "layer"),
        E("layers.conv on flat input", LAY + "net = L.serial(L.Conv(4, 3), L.Relu(), L.Flatten(), L.Dense(1))\nnet.kernels(np.ones((2, 5)))", "Conv"),
        E("layers.conv1d on images", LAY + "net = L.serial(L.Conv(2, 3), L.Dense(1))\nnet.init(key, (1, 8, 8, 1))", "Conv", "rank"),
        E("layers.attention on flat", LAY + "net = L.serial(L.SelfAttention(2), L.Dense(1))\nnet.kernels(np.ones((2, 5)))", "SelfAttention"),
        E("layers.pool window > image", LAY + "net = L.serial(L.AvgPool(9), L.Flatten(), L.Dense(1))\nnet.kernels(np.ones((2, 4, 4, 1)))", "AvgPool"),
        E("layers.kernels nan input", LAY + "net = L.serial(L.Dense(4), L.Relu(), L.Dense(1))\nnet.kernels(np.array([[np.nan, 1.0]]))", "x"),
        E("layers.kernels text input", LAY + "net = L.serial(L.Dense(4), L.Relu(), L.Dense(1))\nnet.kernels('x')", "x"),
        E("layers.apply nan param", LAY + "net = L.serial(L.Dense(4), L.Relu(), L.Dense(1))\nps = net.init(key, (2, 3))\n"
          "leaves, tdef = jax.tree_util.tree_flatten(ps)\nleaves[0] = leaves[0] * np.nan\nnet.apply(jax.tree_util.tree_unflatten(tdef, leaves), np.ones((2, 3)))", "params"),
        E("layers.residual shape mismatch", LAY + "net = L.serial(L.Residual(L.Dense(5)), L.Dense(1))\nnet.kernels(np.ones((2, 3)))", "Residual"),
        R("layers.serial relu kernel psd", LAY + "net = L.serial(L.Dense(8), L.Relu(), L.Dense(1))\n"
          "k = net.kernels(np.random.default_rng(0).normal(size=(4, 3)))\nm = np.asarray(k.ntk)\nassert m.shape == (4, 4) and np.allclose(m, m.T) and np.linalg.eigvalsh(m).min() > -1e-5"),
    ]
    # ------------------------------------------------------------------------------------------- training / dynamics
    p += [
        E("train lrs text", TRAIN + "train(loss, init, (x, y), lrs='0.1', num_steps=3, progress=False)", "lrs"),
        E("train lrs negative", TRAIN + "train(loss, init, (x, y), lrs=[-0.1], num_steps=3, progress=False)", "lrs"),
        E("train lrs nan", TRAIN + "train(loss, init, (x, y), lrs=[np.nan], num_steps=3, progress=False)", "lrs"),
        E("train num_steps 0", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=0, progress=False)", "num_steps"),
        E("train num_steps float", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3.0, progress=False)", "num_steps"),
        E("train batch_size > n", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3, batch_size=100, progress=False)", "batch_size"),
        E("train batch_size bool", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3, batch_size=True, progress=False)", "batch_size"),
        E("train unknown optimizer", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3, optimizer='lion!', progress=False)", "optimizer"),
        E("train seeds negative", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3, seeds=[-1], progress=False)", "seeds"),
        E("train seeds duplicate", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3, seeds=[1, 1], progress=False)", "seeds"),
        E("train data nan", TRAIN + "train(loss, init, (x.at[0, 0].set(np.nan), y), lrs=0.1, num_steps=3, progress=False)", "train_data"),
        E("train data mismatched", TRAIN + "train(loss, init, (x, y[:3]), lrs=0.1, num_steps=3, progress=False)", "train_data"),
        E("train data not pair", TRAIN + "train(loss, init, x, lrs=0.1, num_steps=3, progress=False)", "train_data"),
        E("train vector loss", TRAIN + "train(lambda p, b: (net.apply(p, b[0]) - b[1]) ** 2, init, (x, y), lrs=0.1, num_steps=3, progress=False)", "loss_fn"),
        E("train record_every 0", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3, record_every=0, progress=False)", "record_every"),
        E("train sampling unknown", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3, batch_size=4, sampling='random!', progress=False)", "sampling"),
        E("train momentum nan", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3, optimizer='momentum', momentum=np.nan, progress=False)", "momentum"),
        E("train snapshot beyond", TRAIN + "train(loss, init, (x, y), lrs=0.1, num_steps=3, snapshot_steps=[10], progress=False)", "snapshot_steps"),
        E("train loss_fn not callable", TRAIN + "train('mse', init, (x, y), lrs=0.1, num_steps=3, progress=False)", "loss_fn"),
        R("train divergence flagged at step k", TRAIN + "r = train(loss, init, (x, y), lrs=[0.05, 1e4], num_steps=30, progress=False)\n"
          "d = np.asarray(r.diverged).ravel(); s = np.asarray(r.diverged_step).ravel()\nassert not d[0] and d[1], (d, s)\nassert 0 < s[1] <= 30, s"),
        R("train identical seeds identical result", TRAIN + "a = train(loss, init, (x, y), lrs=0.1, num_steps=5, progress=False)\n"
          "b = train(loss, init, (x, y), lrs=0.1, num_steps=5, progress=False)\nassert np.array_equal(np.asarray(a.train_loss), np.asarray(b.train_loss))"),
        E("train_mlp unknown loss", NET + "from workbench.training import train_mlp\ntrain_mlp(net, (np.ones((4, 3)), np.ones((4, 1))), loss='hinge', lrs=0.1, num_steps=2, progress=False)", "loss"),
        E("train_mlp reduction", NET + "from workbench.training import train_mlp\ntrain_mlp(net, (np.ones((4, 3)), np.ones((4, 1))), reduction='median', lrs=0.1, num_steps=2, progress=False)", "reduction"),
        E("train_mlp empty data", NET + "from workbench.training import train_mlp\ntrain_mlp(net, (np.ones((0, 3)), np.ones((0, 1))), lrs=0.1, num_steps=2, progress=False)", "data"),
        E("dynamics.gradient_flow lr text", SPD + "from workbench.dynamics import gradient_flow\ngradient_flow(k, y, lr='1')", "lr", cheap=True),
        E("dynamics.gradient_flow nan ntk", SPD + "from workbench.dynamics import gradient_flow\nk[0, 1] = k[1, 0] = np.nan\ngradient_flow(k, y)", "ntk_train", cheap=True),
        E("dynamics.gradient_flow not square", SPD + "from workbench.dynamics import gradient_flow\ngradient_flow(k[:2], y)", "ntk_train"),
        E("dynamics.gradient_flow asymmetric", SPD + "from workbench.dynamics import gradient_flow\nk[0, 1] = 3.0\ngradient_flow(k, y)", "ntk_train"),
        E("dynamics.gradient_flow y rows", SPD + "from workbench.dynamics import gradient_flow\ngradient_flow(k, np.ones((4, 1)))", "y_train"),
        E("dynamics.gradient_flow ridge negative", SPD + "from workbench.dynamics import gradient_flow\ngradient_flow(k, y, ridge=-1.0)", "ridge"),
        E("dynamics.gradient_flow loss", SPD + "from workbench.dynamics import gradient_flow\ngradient_flow(k, y, loss='l1')", "loss"),
        E("dynamics.gradient_flow test rows", SPD + "from workbench.dynamics import gradient_flow\ngradient_flow(k, y, ntk_test_train=np.ones((2, 5)))", "ntk_test_train"),
        E("dynamics.gradient_descent lr inf", SPD + "from workbench.dynamics import gradient_descent\ngradient_descent(k, y, lr=np.inf)", "lr"),
        E("dynamics.gradient_descent empty", NP + "from workbench.dynamics import gradient_descent\ngradient_descent(np.zeros((0, 0)), np.zeros((0, 1)), lr=0.1)", "ntk_train"),
        E("dynamics.max_lr num_outputs 0", SPD + "from workbench.dynamics import max_lr_from_ntk\nmax_lr_from_ntk(k, num_outputs=0)", "num_outputs"),
        E("dynamics.predict t negative", SPD + "from workbench.dynamics import gradient_flow\ngradient_flow(k, y)(-1.0)", "t"),
        E("dynamics.predict t nan", SPD + "from workbench.dynamics import gradient_flow\ngradient_flow(k, y)([np.nan])", "t"),
        R("dynamics.gradient_flow converges to interpolant", SPD + "from workbench.dynamics import gradient_flow\n"
          "f = np.asarray(gradient_flow(k, y)(np.inf)[0])\nassert np.allclose(f.reshape(3, 1), y, atol=1e-6), f", cheap=True),
        R("dynamics.unstable gd warns not nan", SPD + "import warnings\nfrom workbench.dynamics import gradient_descent, max_lr_from_ntk\n"
          "lr = 3 * max_lr_from_ntk(k)\nwith warnings.catch_warnings(record=True) as w:\n    warnings.simplefilter('always')\n"
          "    g = gradient_descent(k, y, lr=lr)\nassert any('stab' in str(m.message).lower() or 'diverg' in str(m.message).lower() for m in w), [str(m.message) for m in w]"),
    ]
    # ------------------------------------------------------------------------------------------- hessian / linalg
    p += [
        E("hessian.hvp wrong v length", HESS + "hvp(loss, params, batch, jnp.ones(3))", "v"),
        E("hessian.hvp nan v", HESS + "from workbench.hessian import num_params\nv = jnp.ones(num_params(params)).at[0].set(jnp.nan)\nhvp(loss, params, batch, v)", "v"),
        E("hessian.operator bad kind", HESS + "hessian_operator(loss, params, batch, kind='fisher!')", "kind"),
        E("hessian.operator batch nan", HESS + "hessian_operator(loss, params, (batch[0].at[0, 0].set(jnp.nan), batch[1]))", "batch"),
        E("hessian.operator batch mismatched", HESS + "hessian_operator(loss, params, (batch[0], batch[1][:2]))", "batch"),
        E("hessian.operator empty batch", HESS + "hessian_operator(loss, params, (batch[0][:0], batch[1][:0]))", "batch"),
        E("hessian.operator nan params", HESS + "bad = [dict(q) for q in params]; bad[0]['W'] = bad[0]['W'] * np.nan\nhessian_operator(loss, bad, batch)", "params"),
        E("hessian.mlp_loss unknown loss", NET + "from workbench.hessian import mlp_loss\nmlp_loss(net, 'hinge')", "loss"),
        E("hessian.loss_and_grad batch text", HESS + "loss_and_grad(loss, params, 'batch')", "batch"),
        E("hessian.ggn on plain loss", HESS + "hessian_operator(lambda p, b: jnp.sum(net.apply(p, b[0]) ** 2), params, batch, kind='ggn')", "ggn"),
        E("hessian.unflatten wrong length", HESS + "from workbench.hessian import unflatten_like\nunflatten_like(params, jnp.ones(3))", "flat"),
        R("hessian.operator symmetric and matches dense", HESS + "from workbench.hessian import flatten_params\nop = hessian_operator(loss, params, batch)\n"
          "H = np.stack([np.asarray(op.matvec(e)) for e in np.eye(op.dim)])\nassert np.allclose(H, H.T, atol=1e-4)"),
        E("linalg.top non-symmetric", JX + "from workbench.linalg import top_eigenvalues\nA = jnp.array([[1.0, 5.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])\ntop_eigenvalues((lambda v: A @ v, 3), 1)", "symmetric", cheap=False),
        E("linalg.top wrong output shape", JX + "from workbench.linalg import top_eigenvalues\ntop_eigenvalues((lambda v: jnp.ones(2), 4), 1)", "shape", "expected"),
        E("linalg.top k 0", LIN + "top_eigenvalues(op, 0)", "k"),
        E("linalg.top k > dim", LIN + "top_eigenvalues(op, 7)", "k"),
        E("linalg.top k float", LIN + "top_eigenvalues(op, 1.5)", "k"),
        E("linalg.top dim text", LIN + "top_eigenvalues((lambda v: A @ v, '6'), 1)", "dim"),
        E("linalg.top bad method", LIN + "top_eigenvalues(op, 1, method='arnoldi')", "method"),
        E("linalg.top not operator", LIN + "top_eigenvalues(A, 1)", "operator"),
        E("linalg.top nan matvec", LIN + "top_eigenvalues((lambda v: v * jnp.nan, 6), 1)", "non-finite"),
        E("linalg.top tol negative", LIN + "top_eigenvalues(op, 1, tol=-1.0)", "tol"),
        E("linalg.top num_iters 0", LIN + "top_eigenvalues(op, 1, num_iters=0)", "num_iters"),
        R("linalg.top correct", LIN + "r = top_eigenvalues(op, 2)\nassert np.allclose(np.sort(np.asarray(r.eigenvalues))[::-1], [6, 5], atol=1e-4) and r.converged", cheap=False),
        R("linalg.bottom correct", LIN + "r = bottom_eigenvalues(op, 1)\nassert np.allclose(np.asarray(r.eigenvalues), [1], atol=1e-4)"),
        E("linalg.hutchinson samples 0", LIN + "hutchinson_trace(op, 0)", "num_samples"),
        E("linalg.hutchinson method", LIN + "hutchinson_trace(op, 4, method='exact!')", "method"),
        R("linalg.hutchinson non-symmetric trace", JX + "from workbench.linalg import hutchinson_trace\nA = jnp.triu(jnp.ones((5, 5)))\n"
          "r = hutchinson_trace((lambda v: A @ v, 5), 64)\nassert abs(r.trace - 5.0) <= 5 * r.stderr + 1e-6, r"),
        R("linalg.hutchinson close to trace", LIN + "r = hutchinson_trace(op, 64)\nassert abs(r.trace - 21.0) < 5 * r.stderr + 1e-6, r"),
        E("linalg.slq steps 0", LIN + "slq_density(op, 0, 2)", "num_steps"),
        E("linalg.slq probes float", LIN + "slq_density(op, 4, 2.5)", "num_probes"),
        E("linalg.slq sigma negative", LIN + "slq_density(op, 4, 2, sigma=-1.0)", "sigma"),
        E("linalg.eigvalsh nan", NP + "from workbench.linalg import eigvalsh\neigvalsh(np.array([[1.0, np.nan], [np.nan, 1.0]]))", "k", "non-finite"),
        E("linalg.eigvalsh non-square", NP + "from workbench.linalg import eigvalsh\neigvalsh(np.ones((2, 3)))", "square"),
        E("linalg.eigvalsh asymmetric", NP + "from workbench.linalg import eigvalsh\neigvalsh(np.array([[1.0, 2.0], [0.0, 1.0]]))", "symmetric", cheap=True),
        E("linalg.eigvalsh text", NP + "from workbench.linalg import eigvalsh\neigvalsh('k')", "k"),
        E("linalg.check_psd negative", NP + "from workbench.linalg import check_psd\ncheck_psd(np.diag([1.0, -1.0]))", "k"),
        E("linalg.condition_number empty", NP + "from workbench.linalg import condition_number\ncondition_number(np.zeros((0, 0)))", "k"),
        E("linalg.effective_rank kind", NP + "from workbench.linalg import effective_rank\neffective_rank(np.eye(3), kind='nuclear!')", "kind"),
        E("linalg.alignment y rows", NP + "from workbench.linalg import kernel_target_alignment\nkernel_target_alignment(np.eye(3), np.ones(4))", "y"),
        E("linalg.eigenpairs num 0", NP + "from workbench.linalg import eigenpairs\neigenpairs(np.eye(3), 0)", "num"),
        E("linalg.top_eigenpairs num > n", NP + "from workbench.linalg import top_eigenpairs\ntop_eigenpairs(np.eye(3), 5)", "num"),
        R("linalg.eigvalsh matches numpy", NP + "from workbench.linalg import eigvalsh\na = np.random.default_rng(0).normal(size=(5, 5)); a = a + a.T\n"
          "assert np.allclose(np.sort(eigvalsh(a)), np.linalg.eigvalsh(a), atol=1e-8)", cheap=True),
    ]
    # ------------------------------------------------------------------------------------------- rmt
    p += [
        E("rmt.semicircle_density text", "from workbench.rmt import semicircle_density as f\nf('a')", "x", cheap=True),
        E("rmt.semicircle_density sigma 0", "from workbench.rmt import semicircle_density as f\nf(0.5, 0.0)", "sigma"),
        E("rmt.semicircle_density nan", "from workbench.rmt import semicircle_density as f\nf(float('nan'))", "x"),
        R("rmt.semicircle_density empty in, empty out", "from workbench.rmt import semicircle_density as f\nassert f([]).shape == (0,)"),
        E("rmt.semicircle_moment 2000", "from workbench.rmt import semicircle_moment as f\nf(2000)", "k", cheap=True),
        E("rmt.semicircle_moment negative", "from workbench.rmt import semicircle_moment as f\nf(-2)", "k"),
        E("rmt.semicircle_moment float", "from workbench.rmt import semicircle_moment as f\nf(2.5)", "k"),
        E("rmt.semicircle_cdf sigma text", "from workbench.rmt import semicircle_cdf as f\nf(0.1, 'one')", "sigma"),
        R("rmt.semicircle_moment catalan", "from workbench.rmt import semicircle_moment as f\nassert f(4) == 2.0 and f(6) == 5.0 and f(3) == 0.0", cheap=True),
        E("rmt.mp_density ratio 0", "from workbench.rmt import marchenko_pastur_density as f\nf(1.0, 0.0)", "ratio"),
        E("rmt.mp_density ratio inf", "from workbench.rmt import marchenko_pastur_density as f\nf(1.0, float('inf'))", "ratio"),
        E("rmt.mp_edges sigma2 negative", "from workbench.rmt import marchenko_pastur_edges as f\nf(0.5, -1.0)", "sigma2"),
        E("rmt.mp_moment k huge", "from workbench.rmt import marchenko_pastur_moment as f\nf(10**6, 0.5)", "k"),
        E("rmt.mp_moment k bool", "from workbench.rmt import marchenko_pastur_moment as f\nf(True, 0.5)", "k"),
        E("rmt.mp_atom ratio text", "from workbench.rmt import marchenko_pastur_atom as f\nf('2')", "ratio"),
        E("rmt.spiked_wigner theta nan", "from workbench.rmt import spiked_wigner_outlier as f\nf([1.0, float('nan')])", "theta"),
        E("rmt.spiked_covariance ell negative", "from workbench.rmt import spiked_covariance_outlier as f\nf(-1.0, 0.5)", "ell"),
        E("rmt.critical_batch num_params float", "from workbench.rmt import critical_batch_size as f\nf(1.0, 100.5, 0.1)", "num_params"),
        E("rmt.batch_noise batch 0", "from workbench.rmt import batch_noise_variance as f\nf(1.0, [0, 4])", "batch_size"),
        E("rmt.fit_noise mismatched", "from workbench.rmt import fit_noise_variance as f\nf([1, 2, 4], [1.0, 2.0], 10)", "frob_sq"),
        E("rmt.batch_hessian_top kind", "from workbench.rmt import batch_hessian_top as f\nf(1.0, 10, 0.1, [4, 8], kind='fisher!')", "kind"),
        E("rmt.wigner_edge sigma inf", "from workbench.rmt import wigner_edge as f\nf(float('inf'))", "sigma"),
        R("rmt.mp density integrates to 1", NP + "from workbench.rmt import marchenko_pastur_density as f, marchenko_pastur_edges as e\n"
          "a, b = e(0.5)\nx = np.linspace(a, b, 200001)\nd = f(x, 0.5)\nassert abs(np.sum((d[1:] + d[:-1]) / 2 * np.diff(x)) - 1) < 2e-3"),
    ]
    # ------------------------------------------------------------------------------------------- generalization
    p += [
        E("gen.advani_saxe alpha text", "from workbench.generalization import advani_saxe_errors as f\nf('0.5', [1.0])", "alpha", cheap=True),
        E("gen.advani_saxe t negative", "from workbench.generalization import advani_saxe_errors as f\nf(0.5, [-1.0])", "t"),
        E("gen.advani_saxe alpha 0", "from workbench.generalization import advani_saxe_errors as f\nf(0.0, [1.0])", "alpha"),
        E("gen.advani_saxe noise nan", "from workbench.generalization import advani_saxe_errors as f\nf(0.5, [1.0], noise_var=float('nan'))", "noise_var"),
        E("gen.simulate_advani trials 0", "from workbench.generalization import simulate_advani_saxe as f\nf(0.5, [1.0], num_trials=0)", "num_trials"),
        E("gen.simulate_advani features float", "from workbench.generalization import simulate_advani_saxe as f\nf(0.5, [1.0], num_features=10.5)", "num_features"),
        E("gen.learning_curve p negative", NP + "from workbench.generalization import kernel_learning_curve as f\nf(np.array([1.0, 0.5]), np.array([1.0, 1.0]), [-5])", "p"),
        E("gen.learning_curve mismatched", NP + "from workbench.generalization import kernel_learning_curve as f\nf(np.array([1.0, 0.5]), np.array([1.0]), [5])", "target_powers"),
        E("gen.learning_curve eig negative", NP + "from workbench.generalization import kernel_learning_curve as f\nf(np.array([1.0, -0.5]), np.array([1.0, 1.0]), [5])", "eigenvalues"),
        E("gen.learning_curve ridge nan", NP + "from workbench.generalization import kernel_learning_curve as f\nf(np.array([1.0, 0.5]), np.array([1.0, 1.0]), [5], ridge=np.nan)", "ridge"),
        E("gen.learning_curve empty", NP + "from workbench.generalization import kernel_learning_curve as f\nf(np.array([]), np.array([]), [5])", "eigenvalues"),
        E("gen.extend_sphere dim 1", NP + "from workbench.generalization import extend_sphere_spectrum as f\nf(np.array([1.0, 0.5, 0.1]), 1)", "dim"),
        E("gen.extend_sphere max_degree huge", NP + "from workbench.generalization import extend_sphere_spectrum as f\nf(1.0 / np.arange(1, 51) ** 2, 3, max_degree=10**12)", "max_degree"),
        E("gen.extend_sphere too few", NP + "from workbench.generalization import extend_sphere_spectrum as f\nf(np.array([1.0, 0.5, 0.2, 0.1]), 3)", "eigenvalues", "fit_last"),
        E("gen.mp_xtx alpha negative", "from workbench.generalization import marchenko_pastur_xtx as f\nf(-1.0)", "alpha"),
        E("gen.simulate_kernel trials bool", NP + "from workbench.generalization import simulate_kernel_regression as f\nf(np.array([1.0, 0.5]), np.array([1.0, 1.0]), [5], num_trials=True)", "num_trials"),
        R("gen.learning_curve decreasing", NP + "from workbench.generalization import kernel_learning_curve as f\n"
          "lam = 1.0 / np.arange(1, 200) ** 2\nc = f(lam, lam, [1, 10, 100], ridge=1e-6)\ne = np.asarray(c.E_g)\nassert np.all(np.diff(e) < 0) and np.all(e > 0), e"),
    ]
    # ------------------------------------------------------------------------------------------- lr_batch
    p += [
        E("lr_batch.lr_grid num 0", "from workbench.lr_batch import lr_grid\nlr_grid(1e-3, 1.0, 0)", "num", cheap=True),
        E("lr_batch.lr_grid reversed", "from workbench.lr_batch import lr_grid\nlr_grid(1.0, 1e-3, 5)", "lr_max"),
        E("lr_batch.lr_grid negative", "from workbench.lr_batch import lr_grid\nlr_grid(-1.0, 1.0, 5)", "lr_min"),
        E("lr_batch.lr_grid huge", "from workbench.lr_batch import lr_grid\nlr_grid(1e-3, 1.0, 10**12)", "num"),
        E("lr_batch.check_batch_sizes float", "from workbench.lr_batch import check_batch_sizes\ncheck_batch_sizes([4, 8.5])", "batch_sizes"),
        E("lr_batch.check_batch_sizes > data", "from workbench.lr_batch import check_batch_sizes\ncheck_batch_sizes([4, 80], num_data=50)", "batch_sizes"),
        E("lr_batch.check_batch_sizes empty", "from workbench.lr_batch import check_batch_sizes\ncheck_batch_sizes([])", "batch_sizes"),
        E("lr_batch.critical_batch nan", "from workbench.lr_batch import critical_batch_size\ncritical_batch_size(float('nan'), 1.0)", "s_min"),
        E("lr_batch.noise_scale text", "from workbench.lr_batch import noise_scale\nnoise_scale('1', 1.0, 1.0, 1.0)", "g2"),
        E("lr_batch.simple_noise_scale g2 0", "from workbench.lr_batch import simple_noise_scale\nsimple_noise_scale(0.0, 1.0)", "g2"),
        E("lr_batch.scaling_rule b_ref 0", "from workbench.lr_batch import scaling_rule\nscaling_rule([4, 8], 0.1, 0.0)", "b_ref"),
        E("lr_batch.eos optimizer", "from workbench.lr_batch import eos_threshold\neos_threshold(0.1, optimizer='lion!')", "optimizer"),
        E("lr_batch.eos momentum 1", "from workbench.lr_batch import eos_threshold\neos_threshold(0.1, optimizer='momentum', momentum=1.0)", "momentum"),
        R("lr_batch.fit_power_law drops y <= 0", "from workbench.lr_batch import fit_power_law\nf = fit_power_law([1, 2, 4], [1.0, -1.0, 4.0])\n"
          "assert f.num_points == 2 and abs(f.exponent - 1.0) < 1e-12, f"),
        E("lr_batch.fit_power_law too few", "from workbench.lr_batch import fit_power_law\nfit_power_law([1], [1.0])", "x"),
        E("lr_batch.fit_steps mismatched", "from workbench.lr_batch import fit_steps_examples\nfit_steps_examples([1, 2, 4], [10.0, 5.0])", "steps"),
        E("lr_batch.noise_scale_est b_big <= b_small", "from workbench.lr_batch import noise_scale_estimate\nnoise_scale_estimate([1.0, 2.0], [1.0, 2.0], 8, 4)", "b_big"),
        E("lr_batch.noise_scale_est empty", "from workbench.lr_batch import noise_scale_estimate\nnoise_scale_estimate([], [], 4, 8)", "sq_norm_small"),
        E("lr_batch.random_quadratic dim 0", JX + "from workbench.lr_batch import random_noisy_quadratic as f\nf(key, 0)", "dim"),
        E("lr_batch.random_quadratic eig order", JX + "from workbench.lr_batch import random_noisy_quadratic as f\nf(key, 4, eig_min=1.0, eig_max=0.1)", "eig_max"),
        E("lr_batch.random_quadratic dim huge", JX + "from workbench.lr_batch import random_noisy_quadratic as f\nf(key, 10**6)", "dim"),
        E("lr_batch.simulate steps 0", QUAD + "lb.simulate_noisy_quadratic(prob, [0.1], [2], num_steps=0)", "num_steps"),
        E("lr_batch.simulate optimizer", QUAD + "lb.simulate_noisy_quadratic(prob, [0.1], [2], num_steps=3, optimizer='lbfgs')", "optimizer"),
        E("lr_batch.simulate lrs text", QUAD + "lb.simulate_noisy_quadratic(prob, 'fast', [2], num_steps=3)", "lrs"),
        E("lr_batch.simulate batch float", QUAD + "lb.simulate_noisy_quadratic(prob, [0.1], [2.5], num_steps=3)", "batch_sizes"),
        E("lr_batch.simulate seeds empty", QUAD + "lb.simulate_noisy_quadratic(prob, [0.1], [2], num_steps=3, seeds=[])", "seeds"),
        E("lr_batch.expected_loss batch 0", QUAD + "lb.noisy_quadratic_expected_loss(prob, [0.1], 0, 3)", "batch_size"),
        R("lr_batch.simulate divergence flagged", SR + "d = np.asarray(res.diverged)\nassert d[..., -1, :].all() and not d[..., 0, :].any(), d.shape\n"
          "s = np.asarray(res.diverged_step)\nassert (s[..., -1, :] > 0).all() and (s[..., -1, :] <= 40).all(), s"),
        R("lr_batch.simulate same seeds same result", QUAD + "a = lb.simulate_noisy_quadratic(prob, [0.1], [2], num_steps=10, seeds=[3])\n"
          "b = lb.simulate_noisy_quadratic(prob, [0.1], [2], num_steps=10, seeds=[3])\nassert np.array_equal(np.asarray(a.train_loss), np.asarray(b.train_loss))"),
        E("lr_batch.steps_to_target nan", SR + "lb.steps_to_target(res, float('nan'))", "target_loss"),
        E("lr_batch.optimal_lr by", SR + "lb.optimal_lr(res, by='median!')", "by"),
        E("lr_batch.max_stable_lr not a result", "from workbench.lr_batch import max_stable_lr\nmax_stable_lr({'lrs': [1]})", "result"),
        R("lr_batch.max_stable_lr below diverging lr", SR + "e = lb.max_stable_lr(res)\nv = np.asarray(e.value)\nassert np.all(v < 100.0) and np.all(v >= 0.01), v"),
        E("lr_batch.step_law tokens negative", "from workbench.lr_batch import step_law\nstep_law(1e8, -1e9)", "num_tokens"),
        E("lr_batch.kaplan loss 0", "from workbench.lr_batch import kaplan_critical_batch\nkaplan_critical_batch(0.0)", "loss"),
        E("lr_batch.rmt_max_lr num_params bool", "from workbench.lr_batch import rmt_max_lr\nrmt_max_lr([4], 1.0, True, 0.1)", "num_params"),
        E("lr_batch.sgd_1d sharpness text", "from workbench.lr_batch import sgd_stability_limit_1d\nsgd_stability_limit_1d([4], 'a', 0.1)", "sharpness"),
        E("lr_batch.sampling_factor batch > data", "from workbench.lr_batch import sampling_factor\nsampling_factor(100, 10)", "batch_size"),
    ]
    # ------------------------------------------------------------------------------------------- sweeps and their files
    p += [
        R("sweep interrupted keeps finished points", SWEEP +
          "def stop(step):\n    if glob.glob(os.path.join(d, '*.npz')):\n        raise KeyboardInterrupt\n"
          "part = sweep(loss, init, (x, y), results_dir=d, callback=stop, **kw)['sgd']\nassert not part.completed\n"
          "kept = sorted(glob.glob(os.path.join(d, '*.npz')))\nassert len(kept) == 1, kept\nm = os.path.getmtime(kept[0])\n"
          "again = sweep(loss, init, (x, y), results_dir=d, **kw)['sgd']\nassert os.path.getmtime(kept[0]) == m\n"
          "clean = sweep(loss, init, (x, y), results_dir=tempfile.mkdtemp(), **kw)['sgd']\n"
          "assert np.array_equal(again.train_loss, clean.train_loss) and again.completed"),
    ]
    for how, damage in [("truncated", "with open(f, 'r+b') as fh: fh.truncate(os.path.getsize(f) // 2)"),
                        ("emptied", "with open(f, 'wb'): pass"),
                        ("garbage", "with open(f, 'wb') as fh: fh.write(os.urandom(300))"),
                        ("foreign npz", "with open(f, 'wb') as fh: np.savez(fh, train_loss=np.zeros(3))"),
                        ("text", "with open(f, 'w') as fh: fh.write('not a result')")]:
        p.append(R(f"sweep file {how} is recomputed", SWEEP + "import warnings\nfrom workbench.store import DamagedResultWarning\n"
                   "clean = sweep(loss, init, (x, y), results_dir=d, **kw)['sgd']\nf = sorted(glob.glob(os.path.join(d, '*.npz')))[0]\n"
                   + damage + "\nwith warnings.catch_warnings(record=True) as w:\n    warnings.simplefilter('always')\n"
                   "    again = sweep(loss, init, (x, y), results_dir=d, **kw)['sgd']\n"
                   "assert sum(issubclass(m.category, DamagedResultWarning) for m in w) == 1, [str(m.message) for m in w]\n"
                   "assert np.array_equal(again.train_loss, clean.train_loss) and np.array_equal(again.diverged, clean.diverged)"))
    p += [
        E("sweep results_dir is a file", SWEEP + "f = os.path.join(d, 'x')\nwith open(f, 'w'): pass\nsweep(loss, init, (x, y), results_dir=f, **kw)", "results_dir"),
        E("sweep unknown optimizer", SWEEP + "kw['optimizers'] = ('sgd', 'lamb')\nsweep(loss, init, (x, y), **kw)", "optimizers"),
        E("sweep batch > data", SWEEP + "kw['batch_sizes'] = [4, 64]\nsweep(loss, init, (x, y), **kw)", "batch_sizes"),
        E("sweep lrs duplicate", SWEEP + "kw['lrs'] = [0.1, 0.1]\nsweep(loss, init, (x, y), **kw)", "lrs"),
        E("sweep num_steps text", SWEEP + "kw['num_steps'] = '6'\nsweep(loss, init, (x, y), **kw)", "num_steps"),
        E("sweep record_every > steps", SWEEP + "kw['record_every'] = 0\nsweep(loss, init, (x, y), **kw)", "record_every"),
        R("sweep divergence is a result", SWEEP + "kw['lrs'] = [0.05, 1e5]\nr = sweep(loss, init, (x, y), **kw)['sgd']\n"
          "dv = np.asarray(r.diverged)\nassert dv[..., 1, :].all() and not dv[..., 0, :].any(), dv.shape"),
        E("store.load not a path", "from workbench.store import load_result\nload_result(3.5)", "path"),
        E("store.save empty", "import tempfile, os\nfrom workbench.store import save_result\nsave_result(os.path.join(tempfile.mkdtemp(), 'r.npz'), {})", "arrays"),
        E("store.save into missing dir", NP + "from workbench.store import save_result\nsave_result('/nonexistent/dir/r.npz', {'a': np.ones(2)})", "/nonexistent/dir"),
        R("store damaged file is missing", NP + "import tempfile, os, warnings\nfrom workbench import store\nf = os.path.join(tempfile.mkdtemp(), 'r.npz')\n"
          "store.save_result(f, {'a': np.ones(5)})\nwith open(f, 'r+b') as fh: fh.truncate(20)\nwith warnings.catch_warnings(record=True) as w:\n"
          "    warnings.simplefilter('always')\n    assert store.load_result(f) is None\nassert len(w) == 1 and 'r.npz' in str(w[0].message)", cheap=True),
    ]
    # ------------------------------------------------------------------------------------------- data / datasets
    p += [
        E("data.linear_teacher dim 2.5", JX + "from workbench.data import linear_teacher\nlinear_teacher(key, 4, 2, 2.5)", "dim", cheap=True),
        E("data.linear_teacher n_train 0", JX + "from workbench.data import linear_teacher\nlinear_teacher(key, 0, 2, 3)", "n_train"),
        E("data.linear_teacher noise negative", JX + "from workbench.data import linear_teacher\nlinear_teacher(key, 4, 2, 3, noise_std=-1.0)", "noise_std"),
        E("data.linear_teacher inputs", JX + "from workbench.data import linear_teacher\nlinear_teacher(key, 4, 2, 3, inputs='uniform!')", "inputs"),
        E("data.linear_teacher key int", JX + "from workbench.data import linear_teacher\nlinear_teacher(0, 4, 2, 3)", "key"),
        E("data.digits classes 3.5", JX + "from workbench.data import digits\ndigits(key, 8, 4, classes=(3, 3.5))", "classes", cheap=False),
        E("data.digits classes duplicate", JX + "from workbench.data import digits\ndigits(key, 8, 4, classes=(3, 3))", "classes"),
        E("data.digits classes 10", JX + "from workbench.data import digits\ndigits(key, 8, 4, classes=(1, 10))", "classes"),
        E("data.digits one class", JX + "from workbench.data import digits\ndigits(key, 8, 4, classes=(1,))", "classes"),
        E("data.digits targets", JX + "from workbench.data import digits\ndigits(key, 8, 4, targets='ordinal')", "targets"),
        E("data.digits too many", JX + "from workbench.data import digits\ndigits(key, 10**6, 4)", "n_train"),
        E("data.gaussian_inputs n bool", JX + "from workbench.data import gaussian_inputs\ngaussian_inputs(key, True, 3)", "n"),
        E("data.gaussian_inputs scale nan", JX + "from workbench.data import gaussian_inputs\ngaussian_inputs(key, 4, 3, scale=float('nan'))", "scale"),
        E("data.gaussian_inputs huge", JX + "from workbench.data import gaussian_inputs\ngaussian_inputs(key, 10**9, 10**6)", "GiB"),
        E("data.sphere_points dim 0", JX + "from workbench.data import sphere_points\nsphere_points(key, 4, 0)", "dim"),
        E("data.great_circle n 0", "from workbench.data import great_circle\ngreat_circle(0, 3)", "n"),
        E("data.great_circle dim 1", "from workbench.data import great_circle\ngreat_circle(8, 1)", "dim"),
        E("data.mlp_teacher teacher text", JX + "from workbench.data import mlp_teacher\nmlp_teacher(key, 4, 2, 3, teacher='relu')", "teacher"),
        R("data.digits classes balanced and distinct", JX + "from workbench.data import digits\nd = digits(key, 40, 10, classes=(3, 5))\n"
          "lab = np.argmax(np.asarray(d.y_train), 1)\nassert d.y_train.shape[1] == 2 and set(lab.tolist()) == {0, 1}"),
        R("data.same key same data", JX + "from workbench.data import linear_teacher\na = linear_teacher(jax.random.PRNGKey(7), 4, 2, 3)\n"
          "b = linear_teacher(jax.random.PRNGKey(7), 4, 2, 3)\nassert np.array_equal(np.asarray(a.x_train), np.asarray(b.x_train))", cheap=False),
        E("datasets.load unknown", "from workbench import datasets\ndatasets.load('imagenet')", "imagenet"),
        E("datasets.load split", "from workbench import datasets\ndatasets.load('digits', split='validation')", "split"),
        E("datasets.load n 0", "from workbench import datasets\ndatasets.load('digits', n=0)", "n"),
        E("datasets.load n float", "from workbench import datasets\ndatasets.load('digits', n=10.5)", "n"),
        E("datasets.load n too many", "from workbench import datasets\ndatasets.load('digits', n=10**7)", "n"),
        E("datasets.load dtype", "from workbench import datasets\ndatasets.load('digits', n=8, dtype='float7')", "dtype"),
        E("datasets.cache_path bad name", "from workbench import datasets\ndatasets.cache_path('../etc', 'train')", "name"),
        E("datasets.save_cache mismatched", NP + "from workbench import datasets\ndatasets.save_cache('digits', 'train', np.ones((3, 4)), np.ones(2))", "images"),
        E("datasets.save_cache labels mismatched", NP + "from workbench import datasets\ndatasets.save_cache('digits', 'train', np.ones((3, 8, 8, 1), np.uint8), np.ones(2, int))", "labels"),
        R("datasets.load digits deterministic", "import numpy as np\nfrom workbench import datasets\na = datasets.load('digits', n=16, seed=3)\nb = datasets.load('digits', n=16, seed=3)\n"
          "assert np.array_equal(np.asarray(a.x), np.asarray(b.x)) and a.x.shape[0] == 16"),
    ]
    # ------------------------------------------------------------------------------------------- models.functional
    p += [
        E("models.functional not a model", "from workbench.models import functional\nfunctional(42)", "model"),
        R("models.functional nnx without example", NP + "from workbench.models import functional, small_cnn\nm = functional(small_cnn())\n"
          "assert m.apply_fn(m.params, np.ones((3, 8, 8, 1))).shape == (3, 10)"),
        E("models.resolve_factory no colon", "from workbench.models import resolve_factory\nresolve_factory('examples.flax_cnn')", "module:factory"),
        E("models.resolve_factory missing module", "from workbench.models import resolve_factory\nresolve_factory('no_such_mod_xyz:make')", "no_such_mod_xyz"),
        E("models.resolve_factory missing attr", "from workbench.models import resolve_factory\nresolve_factory('json:no_such_factory')", "no_such_factory"),
        E("models.builtin unknown", "from workbench.models import builtin_model\nbuiltin_model('resnet9000', (8, 8, 1), 10)", "resnet9000"),
        E("models.builtin classes 0", "from workbench.models import builtin_model\nbuiltin_model('cnn', (8, 8, 1), 0)", "num_classes"),
        E("models.small_cnn channels 0", "from workbench.models import small_cnn\nsmall_cnn(channels=0)", "channels"),
        E("models.prepare wrong input shape", NP + "from workbench.models import prepare, small_cnn\nprepare(small_cnn(), np.ones((4, 5, 5, 3)), np.eye(10)[:4])", "x"),
        E("models.prepare labels mismatch", NP + "from workbench.models import prepare, small_cnn\nprepare(small_cnn(), np.ones((4, 8, 8, 1)), np.eye(10)[:3])", "y"),
        E("models.prepare nan input", NP + "from workbench.models import prepare, small_cnn\nx = np.ones((4, 8, 8, 1)); x[0, 0, 0, 0] = np.nan\nprepare(small_cnn(), x, np.eye(10)[:4])", "x"),
        E("models.prepare unknown loss", NP + "from workbench.models import prepare, small_cnn\nprepare(small_cnn(), np.ones((4, 8, 8, 1)), np.eye(10)[:4], loss='hinge')", "loss"),
        E("models.with_dtype bad", NP + "from workbench.models import functional, small_cnn, with_dtype\nm = functional(small_cnn(), example_input=np.ones((1, 8, 8, 1)))\nwith_dtype(m, 'float7')", "dtype"),
    ]
    # ------------------------------------------------------------------------------------------- losses / stats / config
    p += [
        E("losses.mse shape mismatch", NP + "from workbench.losses import mse\nmse(np.ones((4, 2)), np.ones((4, 3)), reduction='mean')", "shape"),
        E("losses.mse reduction", NP + "from workbench.losses import mse\nmse(np.ones((4, 2)), np.ones((4, 2)), reduction='max!')", "reduction", cheap=True),
        E("losses.output_loss unknown", NP + "from workbench.losses import output_loss\noutput_loss('hinge', np.ones((4, 2)), np.ones((4, 2)), reduction='mean')", "loss"),
        E("losses.cross_entropy 1-d", NP + "from workbench.losses import cross_entropy\ncross_entropy(np.ones(4), np.ones(4), reduction='mean')", "f"),
        E("stats.fit_loglog y text", "from workbench.stats import fit_loglog\nfit_loglog([1, 2, 3], 'abc')", "y", cheap=True),
        E("stats.fit_loglog y bools", "from workbench.stats import fit_loglog\nfit_loglog([1, 2, 3], [True, False, True])", "y"),
        R("stats.fit_loglog drops nan y", "from workbench.stats import fit_loglog\nf = fit_loglog([1, 2, 4], [1.0, float('nan'), 4.0])\n"
          "assert f.num_points == 2 and abs(f.exponent - 1.0) < 1e-12, f"),
        E("stats.fit_loglog zero x", "from workbench.stats import fit_loglog\nfit_loglog([0, 2, 3], [1.0, 2.0, 3.0])", "x"),
        E("stats.fit_loglog mismatched", "from workbench.stats import fit_loglog\nfit_loglog([1, 2, 3], [1.0, 2.0])", "y"),
        E("stats.fit_loglog text", "from workbench.stats import fit_loglog\nfit_loglog('123', [1.0, 2.0, 3.0])", "x"),
        E("stats.fit_loglog x_max too small", "from workbench.stats import fit_loglog\nfit_loglog([1, 2, 3], [1.0, 2.0, 3.0], x_max=1.5)", "x_max"),
        E("stats.sampling_factor negative data", "from workbench.stats import sampling_factor\nsampling_factor(4, -10)", "num_data"),
        R("stats.fit_loglog exact power", NP + "from workbench.stats import fit_loglog\nx = np.array([1.0, 2, 4, 8])\nf = fit_loglog(x, 3 * x ** -1.5)\n"
          "assert abs(f.exponent + 1.5) < 1e-10 and abs(f.prefactor - 3) < 1e-9", cheap=True),
        E("config.set_precision bad", "import workbench\nworkbench.set_precision('float16')", "precision", cheap=True),
        E("config.static_figures bad", "from workbench import config\nconfig.set_static_figures('gif!')", "gif!"),
    ]
    # ------------------------------------------------------------------------------------------- experiments
    p += [
        E("experiments.batch_grad_sq_norms batch 0", HESS + "from workbench.experiments import batch_grad_sq_norms\nbatch_grad_sq_norms(loss, params, batch, 0, 3, key=key)", "batch_size"),
        E("experiments.batch_grad_sq_norms batch > n", HESS + "from workbench.experiments import batch_grad_sq_norms\nbatch_grad_sq_norms(loss, params, batch, 50, 3, key=key)", "batch_size"),
        E("experiments.two_batch b_big < b_small", HESS + "from workbench.experiments import two_batch_noise_scale\ntwo_batch_noise_scale(loss, params, batch, 4, 2, num_draws=3, key=key)", "b_big"),
        E("experiments.curvature probes 0", HESS + "from workbench.experiments import curvature_stats\ncurvature_stats(loss, params, batch, num_probes=0)", "num_probes"),
        E("experiments.gradient_noise chunk 0", HESS + "from workbench.experiments import gradient_noise_stats\ngradient_noise_stats(loss, params, batch, chunk_size=0)", "chunk_size"),
    ]
    # ------------------------------------------------------------------------------------------- expression parser, Price, symbolic
    hostile = [
        ("power tower 9**9**9", "9**9**9"), ("power tower 10**10**10", "10**10**10"),
        ("power tower x**10**10**10", "x**10**10**10"), ("power tower x**(2**2**2**2**2)", "x**(2**2**2**2**2)"),
        ("caret tower", "x^(9^9^9)"), ("nested powers", "((((x^9)^9)^9)^9)"), ("huge literal", "1e308 * 10"),
        ("huge integer literal", "1" + "0" * 5000 + " * x"), ("import", "__import__('os').system('true')"),
        ("attribute", "x.__class__"), ("lambda", "(lambda: 1)()"), ("subscript", "x[0]"), ("string", "'abc'"),
        ("comprehension", "[x for x in range(10**9)]"), ("walrus", "(y := x)"), ("unknown function", "foo(x)"),
        ("unknown name", "x + y"), ("empty", ""), ("only spaces", "   "), ("syntax error", "x +* 2"),
        ("too long", "x+" * 5000 + "x"), ("deep nesting", "(" * 300 + "x" + ")" * 300), ("sqrt of -1", "sqrt(-1)"),
        ("division by zero", "x/0"), ("complex literal", "1j * x"), ("eval name", "eval('1')"), ("semicolon", "x; x"),
        ("factorial huge", "factorial(10**6)"), ("bytes", "b'x'"), ("keyword argument", "tanh(x=1)"),
        ("starred", "max(*x)"), ("nested tanh tower", "tanh(" * 200 + "x" + ")" * 200), ("nul byte", "x\x00"),
        ("comparison", "x > 0"), ("boolean op", "x and 1"), ("ellipsis", "..."), ("unicode name", "ｙ + 1"),
    ]
    for label, text in hostile:
        p.append(E(f"parser {label}", PARSE + f"parse({text!r})", "", cheap=label in ("power tower 9**9**9", "import", "empty")))
    p += [
        E("parser text not str", PARSE + "parse(3)", "text"),
        E("parser variables bad", PARSE + "parse('x', variables=['1x'])", "variables"),
        E("parser time_limit negative", PARSE + "parse('x', time_limit=-1)", "time_limit"),
        R("parser accepts bounded", PARSE + "import sympy as sp\ne = parse('x^100 + 2^10 * tanh(x)')\nx = sp.Symbol('x', real=True)\n"
          "assert sp.simplify(e - (x**100 + 1024 * sp.tanh(x))) == 0", cheap=True),
        E("price log(x)", PRICE + "price_check('log(x)', num=2, nodes=8)", "undefined"),
        E("price sqrt(x)", PRICE + "price_check('sqrt(x)', num=2, nodes=8)", "undefined"),
        E("price tower", PRICE + "price_check('x**(2**2**2**2**2)', num=2, nodes=4)", "limit"),
        E("price 1/x", PRICE + "price_check('1/x', num=2, nodes=8)", "1/x"),
        E("price exp(exp(x^2))", PRICE + "price_check('exp(exp(x^2))', num=2, nodes=8)", "exp"),
        E("price k11 negative", PRICE + "price_check('tanh(x)', k11=-1.0)", "k11"),
        E("price num 0", PRICE + "price_check('tanh(x)', num=0)", "num"),
        E("price nodes float", PRICE + "price_check('tanh(x)', nodes=8.5)", "nodes"),
        E("price nodes huge", PRICE + "price_check('tanh(x)', nodes=10**8)", "nodes"),
        R("price constant holds trivially", PRICE + "r = price_check('3', num=2, nodes=8)\nassert r.passed, r.message()"),
        E("price pole off the nodes", PRICE + "price_check('1/(x - 0.3)', num=2, nodes=8)", "unbounded"),
        E("price tan", PRICE + "price_check('tan(x)', num=2, nodes=8)", "tan"),
        E("price nan derivative at a point", PRICE + "price_check('exp(-1/x^2)', num=3, nodes=40)", "phi'", "undefined"),
        E("price activation not str", PRICE + "price_check(None)", "activation"),
        R("price tanh passes", PRICE + "r = price_check('tanh(x)', num=3, nodes=40)\nassert r.passed, r.message()"),
        E("symbolic.check closed form eval", "import os, tempfile\nfrom workbench import symbolic\nflag = os.path.join(tempfile.mkdtemp(), 'pwned')\n"
          "try:\n    symbolic.check('erf_price', closed_form=(f\"__import__('os').system('touch {flag}') * 0 + K_12\", 'K_12'))\n"
          "finally:\n    assert not os.path.exists(flag), 'the closed form was executed'", "closed_form"),
        E("symbolic.check unknown name", "from workbench import symbolic\nsymbolic.check('relu_arcsin')", "relu_arcsin"),
        E("symbolic.check bad method", "from workbench import symbolic\nsymbolic.check('relu_arccos', method='magic')", "method"),
        E("symbolic.check samples 0", "from workbench import symbolic\nsymbolic.check('relu_arccos', samples=0)", "samples"),
        E("symbolic.check closed form wrong length", "from workbench import symbolic\nsymbolic.check('relu_arccos', closed_form=('K_12',))", "closed_form"),
        E("symbolic.check closed form object", "from workbench import symbolic\nsymbolic.check('relu_arccos', closed_form=(object(), object()))", "closed_form"),
        E("symbolic.get unknown", "from workbench import symbolic\nsymbolic.get('nope')", "nope", cheap=True),
        E("symbolic.check precision", "from workbench import symbolic\nsymbolic.check('relu_arccos', precision='ultra')", "precision"),
    ]
    # ------------------------------------------------------------------------------------------- command line
    p += [
        C("cli no command", "", "required", "report"),
        C("cli unknown command", "frobnicate", "frobnicate", cheap=True),
        C("cli report unknown study", "report nope --out r.html", "nope", cheap=True),
        C("cli report missing --out", "report ntk", "--out"),
        C("cli seed huge", "report hessian --seed 99999999999999999999999 --out r.html", "--seed", cheap=True),
        C("cli seed negative", "report hessian --seed -1 --out r.html", "--seed"),
        C("cli seed float", "report hessian --seed 1.5 --out r.html", "--seed"),
        C("cli width zero", "report hessian --width 0 --out r.html", "--width"),
        C("cli width text", "report hessian --width wide --out r.html", "--width"),
        C("cli width huge", "report ntk --width 3000000000 --out r.html", "--width"),
        C("cli depth negative", "report ntk --depth -2 --out r.html", "--depth"),
        C("cli lr nan", "report hessian --lr nan --out r.html", "--lr"),
        C("cli lr negative", "report hessian --lr -0.1 --out r.html", "--lr"),
        C("cli batch sizes bad", "report hessian --batch-sizes 8,x --out r.html", "--batch-sizes"),
        C("cli batch sizes empty", "report hessian --batch-sizes , --out r.html", "--batch-sizes"),
        C("cli batch sizes > data", "report hessian --fast --batch-sizes 8,100000 --num-data 64 --out r.html", "batch"),
        C("cli widths huge", "report ntk --widths 4,1e9 --out r.html", "--widths"),
        C("cli activation unknown", "report ntk --activation swishy --out r.html", "--activation"),
        C("cli kind unknown", "report hessian --kind fisher! --out r.html", "--kind"),
        C("cli dataset unknown", "report hessian --dataset imagenet --out r.html", "--dataset"),
        C("cli out dir missing", "report ntk --fast --out /nonexistent/dir/r.html", "/nonexistent/dir"),
        C("cli out is a directory", "report ntk --fast --out /tmp", "/tmp"),
        C("cli lr-range reversed", "report lr-batch --lr-range 1,0.001 --out r.html", "--lr-range"),
        C("cli lr-range nan", "report lr-batch --lr-range nan,1 --out r.html", "--lr-range"),
        C("cli num-lrs zero", "report lr-batch --num-lrs 0 --out r.html", "--num-lrs"),
        C("cli optimizers unknown", "report lr-batch --optimizers sgd,lion --out r.html", "lion"),
        C("cli momentum inf", "report lr-batch --momentum inf --out r.html", "--momentum"),
        C("cli target-loss text", "report lr-batch --target-loss low --out r.html", "--target-loss"),
        C("cli noise-std nan", "report dynamics --noise-std nan --out r.html", "--noise-std"),
        C("cli lr-fraction zero", "report dynamics --lr-fraction 0 --out r.html", "--lr-fraction"),
        C("cli num-seeds float", "report dynamics --num-seeds 2.5 --out r.html", "--num-seeds"),
        C("cli model no colon", "report hessian --model examples.flax_cnn --out r.html", "model must look like module:factory"),
        C("cli model missing module", "report noise --model no_such_mod_xyz:make --out r.html", "no_such_mod_xyz"),
        C("cli model data unknown", "report noise --model examples.flax_cnn:make --data imagenet --out r.html", "imagenet"),
        C("cli model n zero", "report noise --model examples.flax_cnn:make --n 0 --out r.html", "--n"),
        C("cli precision bad", "report ntk --precision float16 --out r.html", "--precision"),
        C("cli check unknown derivation", "check relu_arcsin", "relu_arcsin"),
        C("cli check device bad", "check relu_arccos --device tpu9", "tpu9"),
        C("cli reproduce unknown", "reproduce nope_2099", "nope_2099"),
        C("cli reproduce nothing", "reproduce", "--all"),
        C("cli reproduce key huge", "reproduce yang_hu_2021_mup --fast --key 99999999999999999999999", "--key"),
        C("cli reproduce key negative", "reproduce yang_hu_2021_mup --fast --key -5", "--key"),
        C("cli diverged pre-training", "report hessian --fast --lr 1e6 --no-progress --num-data 16 --batch-sizes 4 --width 4 "
          "--depth 1 --train-steps 6 --top-k 1 --num-batches 1 --out r.html", "diverged", "learning rate"),
        CR("cli help", "--help", "'report' in out and 'check' in out"),
        CR("cli report ntk help", "report ntk --help", "'--width' in out"),
    ]
    return p


PROBES: list[Probe] = _probes()
