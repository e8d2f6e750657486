"""Declarative checkpoint name maps and the one loader that applies them.

A family describes its checkpoint as `{layer name: {variable path in the layer: Weight}}`, for
example `{"Embedding-Norm": {"gamma": Weight("bert/embeddings/LayerNorm/gamma")}}`. A `Weight`
names the checkpoint key(s) and the NumPy transform that turns them into the variable's value
(a transpose, a head reshape, a slice of a fused q/k/v). `load_mapped_weights` applies a map to
the built layers one array at a time and checks everything: a variable the checkpoint cannot
fill, a checkpoint array the model has no use for and a shape that does not fit are collected
and reported together, never skipped silently.
"""

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np

from b4k3_layers import GroupNorm
from b4k3_ops.resize import orthogonally_resize

# Variables that no checkpoint holds, added on top of pretrained weights: LoRA adapters, the
# projections of the condition in a conditional layer norm (zero at first: the norm starts as the
# pretrained one), and the inner per-head norm of a GroupNorm (ones and zeros: bert4keras3 had it,
# RWKV's `ln_x` is the GroupNorm's own scale and offset).
LORA_VARIABLES = ("lora_",)
CONDITION_SUBLAYERS = ("hidden_dense", "beta_dense", "gamma_dense")
IDENTITY_SUBLAYERS = (f"/{GroupNorm.HEAD_NORM}/",)


@dataclasses.dataclass(frozen=True)
class Weight:
    """One variable's source: checkpoint key(s) and the transform of their arrays.

    With several keys, `transform` receives one array per key (e.g. to fuse q, k and v).
    """

    keys: str | tuple[str, ...]
    transform: Callable | None = None

    @property
    def key_list(self):
        return (self.keys,) if isinstance(self.keys, str) else tuple(self.keys)

    def value(self, reader):
        arrays = [reader.read(key) for key in self.key_list]
        if self.transform is None:
            if len(arrays) != 1:
                raise ValueError(f"Weight{self.key_list}: several keys need a transform that combines them")
            return arrays[0]
        return self.transform(*arrays)


# Named transforms of checkpoint arrays. Those that need a size take it and return the transform.


def transposed(array):
    """A PyTorch `Linear` weight `(out, in)` as a Keras kernel `(in, out)`."""
    return np.ascontiguousarray(np.transpose(array))


def per_head_kernel(heads, head_size):
    """A `Linear` weight `(heads * head_size, hidden)` as an `EinsumDense` kernel `(heads, hidden, head_size)`."""
    return lambda weight: np.ascontiguousarray(weight.reshape(heads, head_size, -1).transpose(0, 2, 1))


def per_head_bias(heads, head_size):
    """A `Linear` bias `(heads * head_size,)` as an `EinsumDense` bias `(heads, head_size)`."""
    return lambda bias: bias.reshape(heads, head_size)


def per_head_output(heads, head_size):
    """An output `Linear` weight `(hidden, heads * head_size)` as an `EinsumDense` kernel
    `(heads, head_size, hidden)`."""
    return lambda weight: np.ascontiguousarray(weight.T.reshape(heads, head_size, -1))


def rows_from(offset):
    """A table without its first `offset` rows (Hugging Face RoBERTa's position 0 is row `pad_token_id + 1`)."""
    return lambda table: table[offset:]


def chained(*transforms):
    """The transforms applied one after the other (None ones skipped)."""
    transforms = [transform for transform in transforms if transform is not None]

    def apply(array):
        for transform in transforms:
            array = transform(array)
        return array

    return apply


def fused_part(index, parts, axis=-1):
    """Part `index` of a weight that fuses `parts` equal projections along `axis` (a fused q/k/v)."""
    return lambda weight: np.ascontiguousarray(np.split(weight, parts, axis=axis)[index])


def within(sublayer, weights):
    """The weights of a sublayer (e.g. an attention's `q_dense`), as paths of the outer layer."""
    return {f"{sublayer}/{path}": weight for path, weight in weights.items()}


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model; `missing`, `mismatched` and `unused` list why."""

    def __init__(self, message, missing, mismatched, unused):
        super().__init__(message)
        self.missing, self.mismatched, self.unused = missing, mismatched, unused


class CheckpointMismatchWarning(UserWarning):
    """What `ignore_invalid_weights=True` reports instead of raising `CheckpointMismatchError`."""


@dataclasses.dataclass
class LoadReport:
    """What a load did: variables set, and the three kinds of problem."""

    loaded: int = 0
    missing: list = dataclasses.field(default_factory=list)
    mismatched: list = dataclasses.field(default_factory=list)
    unused: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not (self.missing or self.mismatched or self.unused)

    def raise_or_warn(self, source, model_name, ignore_invalid_weights, advice):
        """Raises `CheckpointMismatchError` describing every problem (then `advice`), or with
        `ignore_invalid_weights` warns with the same list; nothing when the load fits."""
        if self.ok:
            return
        message = self.describe(source, model_name)
        if not ignore_invalid_weights:
            raise CheckpointMismatchError(
                f"{message}\n{advice}, or pass ignore_invalid_weights=True to load what fits.",
                self.missing,
                self.mismatched,
                self.unused,
            )
        warnings.warn(message + "\nignore_invalid_weights=True: loaded the rest.", CheckpointMismatchWarning, 4)

    def describe(self, source, model_name):
        lines = [f"The checkpoint {source} does not fit the model {model_name}:"]
        for title, entries in (
            ("model variables the checkpoint cannot fill", self.missing),
            ("shapes that do not fit", self.mismatched),
            ("checkpoint arrays the model does not use", self.unused),
        ):
            if entries:
                lines.append(f"  {title} ({len(entries)}):")
                lines.extend(f"    {entry}" for entry in entries)
        return "\n".join(lines)


def layer_variables(layer):
    """`{path inside the layer: variable}` of the variables a checkpoint can hold."""
    prefix = f"{layer.name}/"
    conditional = getattr(layer, "conditional", False)
    variables = {}
    for variable in layer.weights:
        path = variable.path[len(prefix) :] if variable.path.startswith(prefix) else variable.path
        if any(marker in path for marker in LORA_VARIABLES) or any(
            marker in f"/{path}" for marker in IDENTITY_SUBLAYERS
        ):
            continue
        if conditional and path.split("/")[0] in CONDITION_SUBLAYERS:
            continue
        variables[path] = variable
    return variables


def load_mapped_weights(
    layers,
    mapping,
    reader,
    *,
    model_name="the model",
    ignore_invalid_weights=False,
    autoresize_weights=False,
    known_extra_keys=(),
    optional_layers=(),
):
    """Fills the variables of `layers` (`{name: layer}`) from `reader` as `mapping` says.

    Layers of the map that the model did not build are skipped. The keys of those among
    `optional_layers` (heads not asked for, e.g. the MLM head of a pretraining checkpoint) count
    as known, and so do `known_extra_keys` (e.g. a tied decoder matrix); any other key of the
    checkpoint the model does not load is unused (e.g. the segment embeddings of a checkpoint
    when the model has none). With `autoresize_weights`, an array whose shape does not fit is
    resized with `orthogonally_resize` instead of being reported.

    Raises `CheckpointMismatchError` listing every problem, unless `ignore_invalid_weights`, which
    loads the rest and warns with the same list. Returns the `LoadReport`.
    """
    report = LoadReport()
    known = set(known_extra_keys)
    for layer_name, weights in mapping.items():
        layer = layers.get(layer_name)
        if layer is not None or layer_name in optional_layers:
            for weight in weights.values():
                known.update(weight.key_list)
        if layer is None:
            continue
        variables = layer_variables(layer)
        for path, weight in weights.items():
            variable = variables.pop(path, None)
            if variable is None:
                raise RuntimeError(f"The name map of {model_name} names {layer_name}/{path}, which the layer lacks")
            _assign(variable, f"{layer_name}/{path}", weight, reader, report, autoresize_weights)
        for path, variable in variables.items():
            report.missing.append(f"{layer_name}/{path} {tuple(variable.shape)}: not in the name map")
    report.unused = [f"{key} {reader.shape(key)}" for key in reader if key not in known]
    report.raise_or_warn(
        reader.source, model_name, ignore_invalid_weights, "Make the config (and `model=`) match the checkpoint"
    )
    return report


def _assign(variable, name, weight, reader, report, autoresize_weights):
    absent = [key for key in weight.key_list if key not in reader]
    if absent:
        report.missing.append(f"{name} {tuple(variable.shape)} <- {', '.join(absent)}: not in the checkpoint")
        return
    value = weight.value(reader)
    if tuple(value.shape) != tuple(variable.shape):
        if not autoresize_weights:
            keys = ", ".join(f"{key} {reader.shape(key)}" for key in weight.key_list)
            report.mismatched.append(f"{name}: the model has {tuple(variable.shape)}, {keys} gives {value.shape}")
            return
        value = orthogonally_resize(value, tuple(variable.shape))
    variable.assign(value.astype(variable.dtype, copy=False))
    report.loaded += 1
