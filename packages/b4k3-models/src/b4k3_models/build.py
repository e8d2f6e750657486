"""`build_transformer_model`: one call from a config and a checkpoint to a loaded Keras model."""

import difflib
import inspect
import pathlib
import warnings

from b4k3_layers import enable_lora
from b4k3_models.config_checks import check_checkpoint_path, read_config_file, with_model_type
from b4k3_models.gguf_checkpoint import GGUFCheckpoint, is_gguf_file
from b4k3_models.hf_configs import is_hf_config
from b4k3_models.language_models import LM_Mask, extend_with_language_model, extend_with_unified_language_model
from b4k3_models.registry import MODELS, lookup_model, model_version, translate_hf_config
from b4k3_models.t5 import T5_Base
from b4k3_ops.checks import check_bool
from b4k3_ops.switches import lora_enabled

BUILD_PARAMETERS = (
    "attention_caches",
    "layer_norm_cond",
    "layer_norm_cond_hidden_size",
    "layer_norm_cond_hidden_act",
    "additional_input_layers",
)
APPLICATIONS = {"encoder": None, "lm": extend_with_language_model, "unilm": extend_with_unified_language_model}
# bert4keras config keys that name an argument differently: argument -> (config key, the default
# when neither the config nor the family gives one)
BERT4KERAS_ALIASES = {
    "max_position": ("max_position_embeddings", 512),
    "dropout_rate": ("hidden_dropout_prob", None),
    "attention_dropout_rate": ("attention_probs_dropout_prob", None),
    "segment_vocab_size": ("type_vocab_size", 2),
}


class _DefaultModel(str):
    """The default `model='bert'`, told apart from an explicit 'bert' so that a Hugging Face
    config's `model_type` can choose the family when the caller did not."""


DEFAULT_MODEL = _DefaultModel("bert")


def build_transformer_model(
    config_path=None,
    checkpoint_path=None,
    model=DEFAULT_MODEL,
    application="encoder",
    return_keras_model=True,
    keras_weights_path=None,
    version=None,
    initial=True,
    **kwargs,
):
    """Builds a model family from a config and loads its weights (`bert4keras3.models.build_transformer_model`).

    Args:
        config_path: a bert4keras / Google `config.json`, or a Hugging Face one (translated).
            Default: the `config.json` of `checkpoint_path` when that is a Hugging Face directory,
            the metadata of a GGUF file.
        checkpoint_path: a Google TF checkpoint prefix (`.../bert_model.ckpt`), a Hugging Face
            directory (`config.json` + safetensors, sharded or not), a GGUF file (llama.cpp's
            format; dequantized to float32) or a `{name: array}` dict.
        model: the family name (see `b4k3_models.registry.MODELS`) or a `Transformer` subclass.
            Default 'bert', or what a Hugging Face config's `model_type` says.
        application: 'encoder', 'lm' (causal mask) or 'unilm' (UniLM mask).
        return_keras_model: return the `keras.Model` (default) or the `Transformer` object.
        keras_weights_path: a Keras `.weights.h5` file saved from the same model.
        version: the T5 version ('t5.1.0', 't5.1.1', 'mt5.1.1'); only for families that have one.
        initial: bert4keras3's switch for running the model once on dummy inputs so that every
            layer has its weights before `keras_weights_path` is read. b4k3 builds every layer
            when it constructs the model, so True and False give the same model, and the weights
            file is always read.
        **kwargs: arguments of the family class (they override the config) and of `build()`.
            One that no b4k3 model takes (bert4keras3 ignored those) is left out with a warning
            naming it; one that another family takes but this one cannot honour is an error.

    A checkpoint or weights file that does not fit raises `CheckpointMismatchError` listing every
    offending key and shape, unless `ignore_invalid_weights=True`. With `ENABLE_LORA=1`, LoRA
    adapters of rank `attention_head_size` are added (before the checkpoint is read) and only
    they and the norms train.
    """
    check_checkpoint_path(checkpoint_path, config_path)
    check_bool("build_transformer_model", initial=initial)  # bert4keras3's; nothing left for it to do
    if config_path is None and _is_directory(checkpoint_path):
        config_path = pathlib.Path(checkpoint_path) / "config.json"
    configs = with_model_type(read_config_file(config_path), config_path) if config_path is not None else {}
    if config_path is None and is_gguf_file(checkpoint_path):  # the config is in the file's metadata
        checkpoint_path = GGUFCheckpoint(checkpoint_path)
        configs = checkpoint_path.hf_config()
    if is_hf_config(configs):
        hf_model, configs = translate_hf_config(configs)
        if model is DEFAULT_MODEL:
            model = hf_model
    family = lookup_model(model)
    version = version or model_version(model)
    if checkpoint_path is not None and hasattr(family, "config_from_checkpoint"):
        # A family whose checkpoints carry no config (RWKV's .pth) reads its sizes from the arrays.
        checkpoint_path, configs = family.config_from_checkpoint(checkpoint_path, configs)
    if application not in APPLICATIONS:
        raise ValueError(f"application must be one of {sorted(APPLICATIONS)}, got {application!r}")
    if issubclass(family, T5_Base) and application != "encoder":
        raise ValueError(
            f"application={application!r} does not apply to {family.__name__}: T5's decoder is causal already and "
            "its encoder bidirectional; leave application='encoder'"
        )
    if issubclass(family, LM_Mask) and application != "encoder":
        if application == "unilm":
            raise ValueError(
                f"application='unilm' needs an encoder with segment ids (BERT family), not {family.__name__}"
            )
        # 'lm': a decoder has the causal mask already
    elif APPLICATIONS[application] is not None:
        family = APPLICATIONS[application](family)

    build_kwargs = {name: kwargs.pop(name) for name in BUILD_PARAMETERS if name in kwargs}
    arguments = _family_arguments(family, configs, kwargs, version)
    transformer = family(**arguments)
    transformer.build(**build_kwargs)
    if keras_weights_path is not None:
        transformer.load_keras_weights(keras_weights_path)
    if lora_enabled():
        enable_lora(transformer.model, rank=transformer.attention_head_size)
    if checkpoint_path is not None:
        transformer.load_weights_from_checkpoint(checkpoint_path)
    return transformer.model if return_keras_model else transformer


def _is_directory(path):
    return isinstance(path, (str, pathlib.Path)) and pathlib.Path(path).is_dir()


def accepted_arguments(family):
    """`{name: parameter}` of every constructor argument along the family's class hierarchy."""
    arguments = {}
    for cls in family.__mro__:
        if cls is object or "__init__" not in vars(cls):
            continue
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                arguments.setdefault(name, parameter)
    return arguments


def library_arguments():
    """The names of every argument some b4k3 model or `build_transformer_model` takes (families of
    packages that are not installed aside)."""
    names = set(BUILD_PARAMETERS) | set(inspect.signature(build_transformer_model).parameters)
    for model in MODELS:
        try:
            names |= set(accepted_arguments(lookup_model(model)))
        except ImportError:
            continue
    return names


def warn_and_drop_foreign(kwargs, accepted):
    """Removes from `kwargs`, with a warning naming them, the arguments no b4k3 model takes
    (bert4keras3 ignored them silently, so its users' code passes some, e.g. `keras_weights=`)."""
    unknown = set(kwargs) - accepted
    if not unknown:
        return
    known = library_arguments()
    for name in sorted(unknown - known):
        value = kwargs.pop(name)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        warnings.warn(
            f"build_transformer_model ignores {name}={value!r}: no b4k3 model takes {name!r}{hint}", stacklevel=4
        )


def _family_arguments(family, configs, kwargs, version):
    """The constructor arguments: the config's keys the family takes (with bert4keras' aliases),
    overridden by `kwargs`; a keyword no b4k3 model takes warns (and is left out), one this family
    does not take or a missing size is an error that names it."""
    accepted = accepted_arguments(family)
    warn_and_drop_foreign(kwargs, set(accepted))
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"build_transformer_model got argument(s) {unknown} that {family.__name__} does not take; "
            f"it takes {sorted(accepted)} and {list(BUILD_PARAMETERS)}"
        )
    configs = dict(configs)
    for plain, bert4keras in family.argument_aliases:
        for given, other in ((plain, bert4keras), (bert4keras, plain)):
            if given in kwargs:
                configs.pop(other, None)
    for argument, (alias, default) in BERT4KERAS_ALIASES.items():
        if argument in accepted and argument not in configs:
            if alias in configs:
                configs[argument] = configs[alias]
            elif accepted[argument].default is accepted[argument].empty:  # else the family's own default
                configs[argument] = default
    arguments = {name: value for name, value in configs.items() if name in accepted}
    arguments.update(kwargs)
    if version is not None:
        if "version" not in accepted:
            raise ValueError(f"version={version!r} applies to T5 models only, not {family.__name__}")
        arguments["version"] = version
    required = [name for name, parameter in accepted.items() if parameter.default is parameter.empty]
    missing = [name for name in required if name not in arguments]
    if missing:
        raise ValueError(
            f"{family.__name__} needs {missing}: give config_path (a config.json that has them) or pass them as "
            "keyword arguments"
        )
    return arguments
