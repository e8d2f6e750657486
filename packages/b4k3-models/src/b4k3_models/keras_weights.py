"""Loading bert4keras3's own format, Keras `.weights.h5`, with the same strictness as checkpoints.

Keras lays a `.weights.h5` file out by the model's structure (`layers/<layer>/vars/<i>`), not by
layer names, and its loader stops at the first problem. Before loading, every variable the model
would read is compared with the file, so one error lists everything that does not fit.

Files bert4keras3 wrote for Gemma and Gemma2 hold the same weights under other paths: its attention
kept the EinsumDense projections as `query_dense`, `key_dense`, `value_dense`, `output_dense` (b4k3:
`q_dense`...), and Gemma2's attention was a class of its own, `Gemma2Attention`. Such paths are
read as b4k3's (`b4k3_path`) when the model has no variable under the file's own path.

bert4keras3's DeBERTa was built from other layers (keras-nlp's) than b4k3's: its files are read as
a checkpoint (`KerasWeightsFile`), which the family maps by their paths.
"""

import logging
import pathlib
import re

import h5py

from b4k3_models.checkpoints import CheckpointReader
from b4k3_models.weight_maps import LoadReport

LOGGER = logging.getLogger(__name__)
# Groups of a `.weights.h5` file that hold training state, not model weights: `save_weights` of a
# compiled, trained model writes the optimizer's variables there.
TRAINING_STATE = ("optimizer/",)
# bert4keras3's attention paths -> b4k3's: Gemma2's own attention class, then the projections.
BERT4KERAS3_ATTENTION = re.compile(r"(^|/)gemma2_attention(_\d+)?/")
BERT4KERAS3_PROJECTION = re.compile(r"(^|/)(multi_head_attention(?:_\d+)?)/(query|key|value|output)_dense/")


def b4k3_path(entry):
    """The path b4k3's model has for a `.weights.h5` entry written by bert4keras3: `query_dense` is
    `q_dense` ... `output_dense` `o_dense`, in `multi_head_attention` where it says `gemma2_attention`."""
    entry = BERT4KERAS3_ATTENTION.sub(r"\1multi_head_attention\2/", entry)
    return BERT4KERAS3_PROJECTION.sub(lambda match: f"{match[1]}{match[2]}/{match[3][0]}_dense/", entry)


def sources_in_file(expected, stored):
    """`{model path: file path}` for the model paths the file holds, as they are or under
    bert4keras3's names (`b4k3_path`)."""
    sources = {entry: entry for entry in stored if entry in expected}
    for entry in stored:
        translated = b4k3_path(entry)
        if entry not in expected and translated in expected and translated not in sources:
            sources[translated] = entry
    return sources


def expected_entries(model):
    """`{path in the .weights.h5 file: variable}` of what `model.load_weights` reads.

    Keras has no public listing of these paths; this records them with Keras' own walk over the
    model (`saving_lib._save_state`) into an in-memory store that keeps references to the
    variables, not copies of their values.
    """
    from keras.src.saving import saving_lib

    store = saving_lib.NpzIOStore("", mode="w")
    saving_lib._save_state(model, store, None, "", set())
    entries = {}
    for path, variables in store.contents.items():
        folder = "" if path == "__root__" else f"{path}/"
        for index, variable in variables.items():
            entries[f"{folder}vars/{index}"] = variable
    return entries


def stored_entries(path):
    """`{dataset path: shape}` of the model weights in a `.weights.h5` file (the optimizer's
    variables, saved from a trained model, are left out)."""
    shapes, skipped = {}, 0
    with h5py.File(path, "r") as file:

        def record(name, item):
            nonlocal skipped
            if isinstance(item, h5py.Dataset):
                if name.startswith(TRAINING_STATE):
                    skipped += 1
                else:
                    shapes[name] = item.shape

        file.visititems(record)
    if skipped:
        LOGGER.debug("%s: skipped %d arrays of training state (%s)", path, skipped, ", ".join(TRAINING_STATE))
    return shapes


class KerasWeightsFile(CheckpointReader):
    """A `.weights.h5` file read as a checkpoint, its keys the dataset paths
    (`layers/<layer>/vars/<i>`): for files of another model's layout, which a family maps by those
    paths (bert4keras3's DeBERTa)."""

    format = "keras_weights"

    def __init__(self, path):
        super().__init__(str(path), stored_entries(path))

    def _read(self, key):
        with h5py.File(self.source, "r") as file:
            return file[key][()]


def load_keras_weights(model, path, ignore_invalid_weights=False):
    """`model.load_weights(path)` after checking that the file fits the model.

    Raises `CheckpointMismatchError` listing every variable missing from the file, every shape
    that differs and every array the model does not read; with `ignore_invalid_weights=True`
    warns with that list and sets every variable that fits.

    The file is matched to the model by structure (layer order and type), as Keras saves it, not
    by layer names: a file saved from a model with other layers can fit by shape and still hold
    other weights. Build the model from the config the weights were saved with.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"keras_weights_path {str(path)!r} does not exist")
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"keras_weights_path must be a Keras '.weights.h5' file, got {path.name!r}")
    expected, stored = expected_entries(model), stored_entries(path)
    sources = sources_in_file(expected, stored)
    report = LoadReport()
    for entry, variable in expected.items():
        if entry not in sources:
            report.missing.append(f"{variable.path} {tuple(variable.shape)} ({entry}): not in the file")
        elif tuple(stored[sources[entry]]) != tuple(variable.shape):
            report.mismatched.append(
                f"{variable.path}: the model has {tuple(variable.shape)}, the file's {sources[entry]} "
                f"{tuple(stored[sources[entry]])}"
            )
    used = set(sources.values())
    report.unused = [f"{entry} {shape}" for entry, shape in stored.items() if entry not in used]
    report.raise_or_warn(
        str(path), model.name, ignore_invalid_weights, "Build the model with the config the weights were saved from"
    )
    if report.ok and all(entry == source for entry, source in sources.items()):
        model.load_weights(str(path))
    else:
        # Keras' skip_mismatch skips a whole layer when one of its variables does not fit, and its
        # loader knows no other names: set every variable that fits one by one instead.
        with h5py.File(path, "r") as file:
            for entry, variable in expected.items():
                source = sources.get(entry)
                if source is not None and tuple(stored[source]) == tuple(variable.shape):
                    variable.assign(file[source][()])
    report.loaded = len(expected) - len(report.missing) - len(report.mismatched)
    return report
