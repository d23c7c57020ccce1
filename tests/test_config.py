"""Configuration: precision switch, device report, fast mode."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from workbench import config


def test_precision_context_restores():
    assert config.get_precision() == "float64"  # conftest enables x64
    with config.precision("float32"):
        assert config.default_dtype() == jnp.float32
        assert jnp.ones(2).dtype == jnp.float32
    assert config.default_dtype() == jnp.float64
    with pytest.raises(ValueError, match="precision"):
        config.set_precision("float16")


def test_device_report_names_platform_and_precision():
    line = config.device_report()
    assert "cpu" in line and "float64" in line and "\n" not in line
    with config.matmul_precision("highest"):
        assert "highest" in config.device_report()
    with pytest.raises(ValueError, match="matmul precision"):
        with config.matmul_precision("tf32"):
            pass


def test_fast_mode(monkeypatch):
    monkeypatch.setenv("WORKBENCH_FAST", "1")
    assert config.fast_mode() and config.pick("small", "big") == "small"
    monkeypatch.setenv("WORKBENCH_FAST", "0")
    assert not config.fast_mode() and config.pick("small", "big") == "big"
    monkeypatch.delenv("WORKBENCH_FAST")
    assert not config.fast_mode()
    monkeypatch.setenv("WORKBENCH_FAST", "maybe")
    with pytest.raises(ValueError, match="WORKBENCH_FAST"):
        config.fast_mode()
