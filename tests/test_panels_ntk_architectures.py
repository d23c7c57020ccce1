"""The NTK panel's architecture choice: each image architecture draws its spectrum, channel-convergence and
locality figures with data; switching the architecture supersedes the running experiment.

Sizes are the smallest that still exercise every path: 8 images, depth 1, one seed, channels 8 and 16 in the
convergence sweep, and the locality study reduced to the MLP against the local CNN (the study itself, with all
five architectures and the decay it shows, is tested in tests/test_studies_architectures.py).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from workbench.panels.ntk import NTKPanel

SMALL = dict(depth=1, n=8, width=16, seeds=1, channel_sweep=(8, 16), locality_names=("mlp", "cnn_flatten"))
IMAGE_FIGURES = ["spectrum", "channel_convergence", "locality_spectra", "locality_decay"]


def _check_image_figures(panel: NTKPanel, label: str) -> None:
    assert list(panel.figures) == IMAGE_FIGURES
    assert panel.width.description == "channels"
    spec = panel.figures["spectrum"].figure
    assert spec.layout.title.text.startswith(f"{label} NTK spectrum: 16 channels")
    # one seed of empirical eigenvalues and the infinite-width ones, 8 each, positive (PSD kernels of 8 images)
    assert [len(d.y) for d in spec.data] == [8, 8] and all(np.min(d.y) > 0 for d in spec.data)
    conv = panel.figures["channel_convergence"].figure
    assert list(conv.data[0].x) == [8, 16] and np.all(np.asarray(conv.data[0].y) > 0)
    assert label in conv.data[0].name
    loc = panel.figures["locality_spectra"].figure
    assert len(loc.data) == 2 and all(len(d.y) > 0 for d in loc.data)
    decay = panel.figures["locality_decay"].figure
    assert list(decay.data[0].x) == ["MLP", "local CNN (flatten)"] and np.all(np.isfinite(decay.data[0].y))


def _wait_until(predicate, timeout: float = 120.0) -> bool:
    event = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        event.wait(0.02)
    return False


def test_switching_architecture_supersedes_the_running_experiment_and_draws_the_new_one():
    panel = NTKPanel(threaded=True, architecture="cnn_flatten", **SMALL)
    first = ("NTKPanel", "experiment", tuple(panel.params()))
    # the local CNN's studies start in the background (the infinite-width kernel compiles first: seconds)
    assert _wait_until(lambda: "computing local CNN (flatten) studies" in panel.status.value)
    panel.architecture.value = "resnet"
    assert panel.wait(timeout=600)
    assert ("experiment", first, "superseded") in panel.runner.history
    second = ("NTKPanel", "experiment", tuple(panel.params()))
    assert panel.runner.history[-1] == ("experiment", second, "done")
    _check_image_figures(panel, "residual CNN")
    assert "residual CNN studies done" in panel.status.value


@pytest.mark.slow  # four architectures and the MLP again: about a minute on 2 cores
def test_each_architecture_draws_its_figures_and_the_mlp_comes_back():
    panel = NTKPanel(threaded=False, architecture="cnn_gap", **SMALL)
    _check_image_figures(panel, "CNN + global pool")
    for name, label in (("cnn_flatten", "local CNN (flatten)"), ("resnet", "residual CNN"),
                        ("attention", "self-attention")):
        panel.architecture.value = name
        _check_image_figures(panel, label)
        assert "locality" not in panel.computed  # the locality study does not depend on the choice: computed once
    panel.width.value = 64  # the channels are remembered apart from the MLP's width
    panel.architecture.value = "mlp"
    assert panel.width.description == "width" and panel.width.value == 256
    assert list(panel.figures) == ["spectrum", "convergence", "sphere", "drift"]
    assert all(len(f.figure.data) > 0 for f in panel.figures.values())
    panel.architecture.value = "cnn_gap"
    assert panel.width.value == 64


def test_bad_initial_values_are_refused():
    with pytest.raises(TypeError, match="unknown widget values"):
        NTKPanel(threaded=True, channels=3)
    with pytest.raises(ValueError, match="architecture must be one of"):
        NTKPanel(threaded=True, architecture="transformer")
    with pytest.raises(ValueError, match="locality_names must be one of"):
        NTKPanel(threaded=True, locality_names=("vit",))
