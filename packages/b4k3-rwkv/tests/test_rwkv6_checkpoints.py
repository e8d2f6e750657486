"""Loading RWKV-6 checkpoints: BlinkDL's `.pth` (read with `torch.load(weights_only=True)`), a
safetensors file and a dict of the same names; the sizes come from the arrays' shapes, a config
must agree with them; a checkpoint that does not fit, or is not an RWKV-6 state dict, or cannot
be read safely, is an error that names what is wrong."""

import json
import pickle
import sys

import keras
import numpy as np
import pytest
import safetensors.numpy
import torch
from rwkv_checks import TINY_RWKV6, Reference, assert_close, save_pth, tiny_state_dict

from b4k3_models import CheckpointMismatchError, build_transformer_model
from b4k3_rwkv import RWKV6

TOKENS = np.array([[5, 17, 999, 3, 42, 7, 8]], dtype="int32")


def logits_of(model):
    return keras.ops.convert_to_numpy(model.predict(TOKENS, verbose=0))


@pytest.fixture(scope="module")
def expected_logits(reference):
    return reference.forward(TOKENS[0])[0][None]


def test_sizes_are_read_from_the_state_dict(rwkv6):
    assert isinstance(rwkv6, RWKV6)
    assert (rwkv6.vocab_size, rwkv6.hidden_size, rwkv6.num_hidden_layers) == (1000, 128, 2)
    assert (rwkv6.num_attention_heads, rwkv6.attention_head_size, rwkv6.intermediate_size) == (2, 64, 448)
    assert (rwkv6.decomposer_size, rwkv6.time_decay_size) == (32, 64)
    for name in (
        "Embedding-Token",
        "Embedding-Norm",
        "RWKV-0-TimeMix",
        "RWKV-1-ChannelMix-Norm",
        "Output-Norm",
        "RWKV-LM",
    ):
        assert rwkv6.model.get_layer(name) is not None


@pytest.mark.parametrize("source", ["safetensors", "dict"])
def test_a_safetensors_file_or_a_dict_of_the_same_names_loads(rwkv6_weights, tmp_path, expected_logits, source):
    arrays = {name: tensor.numpy() for name, tensor in rwkv6_weights.items()}
    if source == "safetensors":
        checkpoint = tmp_path / "tiny.safetensors"
        safetensors.numpy.save_file(arrays, str(checkpoint))
    else:
        checkpoint = arrays
    model = build_transformer_model(checkpoint_path=checkpoint, model="rwkv6", with_lm="linear")
    assert_close(logits_of(model), expected_logits)


def test_a_config_that_agrees_is_accepted_and_one_that_disagrees_is_named(rwkv6_pth, tmp_path, expected_logits):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hidden_size": 128, "num_hidden_layers": 2, "decomposer_size": 32}))
    model = build_transformer_model(config_path=config, checkpoint_path=rwkv6_pth, model="rwkv6", with_lm="linear")
    assert_close(logits_of(model), expected_logits)
    config.write_text(json.dumps({"hidden_size": 128, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match=r"num_hidden_layers=3 \(the checkpoint has 2\)"):
        build_transformer_model(config_path=config, checkpoint_path=rwkv6_pth, model="rwkv6")


def test_a_model_built_from_a_config_alone_has_the_released_layout():
    model = build_transformer_model(
        model="rwkv6",
        vocab_size=50,
        hidden_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=256,
        decomposer_size=8,
        with_lm="linear",
    )
    assert model.predict(TOKENS % 50, verbose=0).shape == (1, TOKENS.shape[1], 50)


def test_missing_unused_and_misshaped_arrays_are_all_named(rwkv6_weights):
    weights = {name: tensor.numpy() for name, tensor in rwkv6_weights.items()}
    del weights["blocks.1.ffn.time_maa_r"]
    weights["blocks.0.att.ln_x.weight"] = np.ones(130, "float32")
    weights["blocks.0.att.extra"] = np.ones(3, "float32")
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(checkpoint_path=weights, model="rwkv6")
    message = str(caught.value)
    for named in ("blocks.1.ffn.time_maa_r", "blocks.0.att.ln_x.weight (130,)", "blocks.0.att.extra"):
        assert named in message


def test_a_state_dict_of_another_rwkv_version_is_refused(rwkv6_weights):
    weights = {name: tensor.numpy() for name, tensor in rwkv6_weights.items() if "time_maa_x" not in name}
    with pytest.raises(ValueError, match=r"not an RWKV-6 \(x060\) state dict: it lacks \['blocks.0.att.time_maa_x'\]"):
        build_transformer_model(checkpoint_path=weights, model="rwkv6")


class Payload:
    """A pickled object: unpickling it unrestricted would call its class."""


def test_a_pth_that_is_not_only_tensors_is_refused_unread(tmp_path):
    path = tmp_path / "object.pth"
    torch.save({"emb.weight": Payload()}, path)
    with pytest.raises(ValueError, match=r"torch.load\(weights_only=True\) failed"):
        build_transformer_model(checkpoint_path=path, model="rwkv6")
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ValueError, match=r"object\.pth"):
        build_transformer_model(checkpoint_path=path, model="rwkv6")
    torch.save([torch.ones(2)], path)
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        build_transformer_model(checkpoint_path=path, model="rwkv6")


def test_a_damaged_pth_is_named(rwkv6_pth, tmp_path):
    path = tmp_path / "cut.pth"
    path.write_bytes(rwkv6_pth.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"cut\.pth"):
        build_transformer_model(checkpoint_path=path, model="rwkv6")


def test_without_torch_a_pth_asks_for_torch_or_safetensors(rwkv6_pth, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="needs torch"):
        build_transformer_model(checkpoint_path=rwkv6_pth, model="rwkv6")


def test_a_state_tuned_checkpoint_starts_from_its_states_as_the_rwkv_package(tmp_path):
    """RWKV-PEFT's merged files hold `blocks.{i}.att.time_state` (values first); the `rwkv`
    package starts every text from them, and so does b4k3."""
    weights = tiny_state_dict(seed=3)
    sizes = TINY_RWKV6
    head_size = sizes["hidden_size"] // sizes["heads"]
    generator = torch.Generator().manual_seed(4)
    for index in range(sizes["num_hidden_layers"]):
        weights[f"blocks.{index}.att.time_state"] = torch.randn(
            sizes["heads"], head_size, head_size, generator=generator
        )
    path = save_pth(weights, tmp_path / "tuned.pth")
    expected, _ = Reference(path).forward(TOKENS[0])
    model = build_transformer_model(checkpoint_path=path, model="rwkv6", with_lm="linear")
    assert_close(logits_of(model)[0], expected)
    # The same states as a separate RWKV-PEFT state file, loaded into the untuned model.
    states = {name: tensor for name, tensor in weights.items() if name.endswith("time_state")}
    plain = build_transformer_model(
        checkpoint_path={name: tensor.numpy() for name, tensor in weights.items() if name not in states},
        model="rwkv6",
        with_lm="linear",
        return_keras_model=False,
    )
    state_file = save_pth(states, tmp_path / "states.pth")
    plain.load_time_state(state_file)
    assert_close(logits_of(plain.model)[0], expected)
    del states["blocks.1.att.time_state"]
    with pytest.raises(ValueError, match=r"blocks.1.att.time_state: missing"):
        plain.load_time_state(save_pth(states, tmp_path / "half.pth"))


def test_the_registry_names_the_package_rwkv6_needs(monkeypatch):
    from b4k3_models.registry import lookup_model

    assert lookup_model("RWKV6") is RWKV6
    monkeypatch.setitem(sys.modules, "b4k3_rwkv", None)
    with pytest.raises(ImportError, match="model='rwkv6' needs the b4k3-rwkv package"):
        lookup_model("rwkv6")
