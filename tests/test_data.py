"""Data: shapes, dtypes, seeding, sphere uniformity, teachers, digits, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import data
from workbench.nets import MLP


def test_sphere_points_are_unit_and_uniform(key):
    x = data.sphere_points(key, 4000, 3)
    assert x.shape == (4000, 3) and x.dtype == jnp.float64
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-12)
    # Uniform on S^2: E[x] = 0 and E[x x^T] = I/3. Each entry's standard error is at most sqrt(1/(3n)) (mean)
    # and sqrt(Var(x_i^2)/n) = sqrt(4/45/n) (second moment); allow 4 standard errors.
    n = x.shape[0]
    assert np.max(np.abs(np.mean(x, 0))) < 4 * np.sqrt(1 / (3 * n))
    assert np.max(np.abs(np.asarray(x.T @ x) / n - np.eye(3) / 3)) < 4 * np.sqrt(4 / 45 / n)
    np.testing.assert_array_equal(x, data.sphere_points(key, 4000, 3))


def test_great_circle():
    t, x = data.great_circle(8, 4)
    assert t.shape == (8,) and x.shape == (8, 4)
    np.testing.assert_allclose(x[:, 0], np.cos(t), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-12)


def test_linear_teacher_noise_level(key):
    ds = data.linear_teacher(key, 20000, 10, 5, noise_std=0.5)
    assert ds.x_train.shape == (20000, 5) and ds.y_train.shape == (20000, 1) and ds.y_test.shape == (10, 1)
    # Least squares recovers the teacher; the residual variance is the noise variance 0.25 up to a relative
    # standard error sqrt(2/n) = 1%: allow 4%.
    w, res, *_ = np.linalg.lstsq(np.asarray(ds.x_train), np.asarray(ds.y_train), rcond=None)
    assert abs(res[0] / 20000 / 0.25 - 1) < 0.04


def test_mlp_teacher(key):
    teacher = MLP(depth=1, width=16, activation="tanh")
    ds = data.mlp_teacher(key, 30, 7, 3, teacher=teacher)
    assert ds.x_train.shape == (30, 3) and ds.y_test.shape == (7, 1)
    params = teacher.init(jax.random.split(key, 4)[0], 3)
    np.testing.assert_allclose(ds.y_train, teacher.apply(params, ds.x_train), rtol=1e-12)
    with pytest.raises(TypeError, match="teacher"):
        data.mlp_teacher(key, 3, 3, 3, teacher="mlp")


def test_digits(key):
    ds = data.digits(key, 100, 50, classes=(3, 8))
    assert ds.x_train.shape == (100, 64) and ds.y_train.shape == (100, 2)
    np.testing.assert_allclose(np.mean(ds.x_train, 0), 0.0, atol=1e-12)
    pm = data.digits(key, 10, 5, classes=(0, 1), targets="pm1")
    assert set(np.unique(pm.y_train)) <= {-1.0, 1.0}
    lab = data.digits(key, 10, 5, targets="label", center=False)
    assert lab.x_train.min() >= 0 and lab.x_train.max() <= 1
    with pytest.raises(ValueError, match="exceeds"):
        data.digits(key, 1000, 1000, classes=(0, 1))
    with pytest.raises(ValueError, match="classes"):
        data.digits(key, 10, 10, classes=(1,))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda k: data.sphere_points(k, 0, 3), "n must be"),
        (lambda k: data.sphere_points(k, 5, 1), "dim must be"),
        (lambda k: data.gaussian_inputs(k, 5, 3, scale=-1.0), "scale"),
        (lambda k: data.linear_teacher(k, 5, 5, 3, noise_std=-0.1), "noise_std"),
        (lambda k: data.linear_teacher(k, 5, 5, 3, inputs="cube"), "inputs"),
        (lambda k: data.digits(k, 5, 5, targets="ordinal"), "targets"),
    ],
)
def test_bad_input(call, match, key):
    with pytest.raises((ValueError, TypeError), match=match):
        call(key)
