"""Initialisation schemes: PyTorch's U(±1/√H) (the default) and d2l's N(0, 0.01²), zero biases."""

from __future__ import annotations

import numpy as np
import pytest

from seqtui.engine.config import RunConfig
from seqtui.errors import ConfigError
from seqtui.models.charmodel import CharModel, ModelConfig

CFG = ModelConfig(cell="gru", vocab_size=30, hidden=64, num_layers=2)


def test_pytorch_init_is_uniform_within_one_over_sqrt_h():
    named = CharModel(CFG, seed=3).named_parameters()
    bound = 1 / np.sqrt(CFG.hidden)
    for name, w in named.items():
        assert np.abs(w).max() <= bound, name
        assert np.abs(w).max() > 0.9 * bound, name  # spread over the whole interval


def test_d2l_init_has_small_gaussian_weights_and_zero_biases():
    model = CharModel(CFG, seed=3, init="d2l")
    weights = []
    for name, w in model.named_parameters().items():
        if "bias" in name:
            assert not w.any(), name
        else:
            weights.append(w.ravel())
    w = np.concatenate(weights).astype(np.float64)
    assert abs(w.std() - 0.01) < 0.0005 and abs(w.mean()) < 0.0005
    again = CharModel(CFG, seed=3, init="d2l")
    np.testing.assert_array_equal(model.params, again.params)


def test_unknown_init_is_a_config_error():
    with pytest.raises(ConfigError, match="init"):
        CharModel(CFG, init="xavier")
    with pytest.raises(ConfigError, match="unknown init"):
        RunConfig(corpus="genesis", init="xavier").validate()


def test_a_model_that_cannot_fit_in_memory_is_refused_before_allocating(monkeypatch):
    from seqtui.models import memory as model_mod

    big = ModelConfig(cell="gru", vocab_size=80, hidden=60000, num_layers=1)
    assert model_mod.training_bytes(big, 32, 35) > 40 * 2**30  # 3·H² weights ×4 copies ×4 bytes
    monkeypatch.setattr(model_mod, "available_memory", lambda: 24 * 2**30)
    with pytest.raises(ConfigError, match=r"needs about \d+\.\d GiB; 24\.0 GiB is available"):
        model_mod.check_fits_in_memory(big, 32, 35)
    model_mod.check_fits_in_memory(CFG, 32, 35)  # a small one passes
