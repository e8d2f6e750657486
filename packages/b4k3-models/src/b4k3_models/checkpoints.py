"""Readers of pretrained checkpoints: Google TF checkpoints, Hugging Face safetensors directories
(single file or sharded) and plain `{name: array}` dicts, behind one small interface.

A reader lists its keys with their shapes without reading any data, and reads one array at a
time, so loading never holds a second full copy of the weights.
"""

import json
import pathlib
import re

import numpy as np

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
HF_CONFIG_FILE = "config.json"

# Variables a checkpoint carries that are not model weights: optimizer slots (Adam's, mesh-TF
# Adafactor's `*_slot_vc/vr/v`) and step counters of Google's TF training scripts, and the
# position-id, rotary-frequency and GPT-2 causal-mask (`h.N.attn.bias`, `attn.masked_bias`)
# buffers older Hugging Face checkpoints saved.
TRAINING_STATE = re.compile(
    r"(^|/)(global_step|good_steps|bad_steps|loss_scale|current_loss_scale)$|(adam_[mv]|Momentum|_slot_v[cr]?)$"
    r"|(^|\.)position_ids$|rotary_emb\.inv_freq$|(^|\.)attn\.(masked_)?bias$"
)


class CheckpointReader:
    """Keys, shapes and arrays of one checkpoint. Subclasses fill `_shapes` and define `_read`."""

    format = None  # 'tf', 'hf' or 'dict': which name map of a family applies

    def __init__(self, source, shapes):
        self.source = source
        self._shapes = {key: tuple(shape) for key, shape in shapes.items() if not TRAINING_STATE.search(key)}

    def keys(self):
        return self._shapes.keys()

    def __iter__(self):
        return iter(self._shapes)

    def __contains__(self, key):
        return key in self._shapes

    def shape(self, key):
        return self._shapes[key]

    def read(self, key):
        """The array stored under `key`, as NumPy."""
        if key not in self._shapes:
            raise KeyError(f"{key!r} is not in the checkpoint {self.source}")
        return np.asarray(self._read(key))

    def _read(self, key):
        raise NotImplementedError

    def close(self):
        """Releases open files (a no-op for readers that hold none)."""

    def __repr__(self):
        return f"{type(self).__name__}({self.source!r}, {len(self._shapes)} arrays)"


class DictCheckpoint(CheckpointReader):
    """A checkpoint given as a `{name: array}` dict (bert4keras3 accepted one too), read as TF names."""

    format = "tf"

    def __init__(self, arrays):
        self._arrays = arrays
        super().__init__("<dict>", {key: np.shape(value) for key, value in arrays.items()})

    def _read(self, key):
        return self._arrays[key]


class TFCheckpoint(CheckpointReader):
    """A Google TF checkpoint (`.../bert_model.ckpt`), read with `tf.train.load_checkpoint`."""

    format = "tf"

    def __init__(self, path):
        try:
            import tensorflow as tf
        except ImportError as error:
            raise ImportError(
                f"Reading the TF checkpoint {path} needs TensorFlow, whatever the Keras backend: "
                "pip install 'tensorflow>=2.16' (or tensorflow-cpu)."
            ) from error
        prefix = str(path)
        if not tf.io.gfile.exists(prefix + ".index"):
            raise FileNotFoundError(
                f"No TF checkpoint at {prefix}: expected {prefix}.index next to its data files. Give the checkpoint "
                "prefix, e.g. '.../bert_model.ckpt'."
            )
        self._reader = tf.train.load_checkpoint(prefix)
        super().__init__(prefix, self._reader.get_variable_to_shape_map())

    def _read(self, key):
        return self._reader.get_tensor(key)


class SafetensorsCheckpoint(CheckpointReader):
    """A Hugging Face model directory: `model.safetensors`, or shards listed by
    `model.safetensors.index.json`. Read with safetensors' NumPy API (no torch needed)."""

    format = "hf"

    def __init__(self, directory):
        from safetensors import safe_open

        directory = pathlib.Path(directory)
        index = directory / SAFETENSORS_INDEX
        if index.is_file():
            files = sorted(set(_weight_map(index).values()))
        elif (directory / SAFETENSORS_FILE).is_file():
            files = [SAFETENSORS_FILE]
        else:
            found = sorted(path.name for path in directory.iterdir())
            raise FileNotFoundError(
                f"No {SAFETENSORS_FILE} or {SAFETENSORS_INDEX} in {directory} (it holds {found}). "
                "b4k3 reads Hugging Face checkpoints saved as safetensors: "
                "save_pretrained(..., safe_serialization=True)."
            )
        self._files = {}
        shapes = {}
        for file in files:
            if not (directory / file).is_file():
                raise FileNotFoundError(f"{directory / file} is missing: {SAFETENSORS_INDEX} lists it")
            try:
                with safe_open(str(directory / file), framework="np") as handle:
                    for key in handle.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                        self._files[key] = str(directory / file)
                        shapes[key] = handle.get_slice(key).get_shape()
            except Exception as error:  # safetensors raises its own SafetensorError, not an OSError
                raise ValueError(
                    f"{directory / file} is damaged or incomplete (safetensors cannot read it: {error}); "
                    "download it again"
                ) from error
        super().__init__(str(directory), shapes)

    def _read(self, key):
        # The file is mapped for this one array and unmapped after: keeping it mapped would keep
        # every page read so far resident, a second copy of the checkpoint by the end.
        from safetensors import safe_open

        with safe_open(self._files[key], framework="np") as handle:
            return handle.get_tensor(key)


def _weight_map(index):
    """The `weight_map` of a sharded checkpoint's index file, which must be intact JSON."""
    try:
        return json.loads(index.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError) as error:
        raise ValueError(
            f"{index} is damaged or incomplete (no readable weight_map: {error!r}); download it again"
        ) from error


def open_checkpoint(checkpoint):
    """The reader for `checkpoint`: a dict, a Hugging Face directory, a GGUF file, or a TF checkpoint prefix."""
    if isinstance(checkpoint, CheckpointReader):
        return checkpoint
    if isinstance(checkpoint, dict):
        return DictCheckpoint(checkpoint)
    path = pathlib.Path(checkpoint)
    if path.is_dir():
        return SafetensorsCheckpoint(path)
    from b4k3_models.gguf_checkpoint import GGUFCheckpoint, is_gguf_file  # it builds on this module

    if is_gguf_file(path):
        return GGUFCheckpoint(path)
    if path.suffix == ".safetensors" and path.is_file():
        return SafetensorsCheckpoint(path.parent)
    if pathlib.Path(f"{path}.index").is_file():
        return TFCheckpoint(path)
    raise FileNotFoundError(
        f"checkpoint_path {str(checkpoint)!r} does not exist: give a Hugging Face model directory (config.json + "
        "*.safetensors), a GGUF file, a TF checkpoint prefix such as '.../bert_model.ckpt', or a {name: array} dict."
    )
