"""Viterbi decoding of a linear-chain CRF's scores in NumPy (bert4keras3's `ViterbiDecoder`)."""

import numpy as np


class ViterbiDecoder:
    """The best label path for per-position label scores and label-to-label transition scores.

    Args:
        trans: `(num_labels, num_labels)` transition scores, `trans[i, j]` for label i then j
            (e.g. a CRF layer's transition matrix).
        starts: the labels a path may start with (default: any).
        ends: the labels a path may end with (default: any).

    Subclass it and call `self.decode(nodes)` with `nodes` the `(seq_len, num_labels)` scores of
    one sequence; it returns the best path as label ids.
    """

    def __init__(self, trans, starts=None, ends=None):
        self.trans = np.asarray(trans)
        self.num_labels = len(self.trans)
        everything = range(self.num_labels)
        self.non_starts = [] if starts is None else [i for i in everything if i not in starts]
        self.non_ends = [] if ends is None else [i for i in everything if i not in ends]

    def decode(self, nodes):
        """The label path maximising the sum of node and transition scores of `nodes`."""
        nodes = np.array(nodes, dtype="float64")  # a copy: the caller's scores stay as they are
        nodes[0, self.non_starts] = -np.inf
        nodes[-1, self.non_ends] = -np.inf
        scores = nodes[0]
        backpointers = []
        for step in nodes[1:]:
            candidates = scores[:, None] + self.trans + step[None, :]  # previous label x label
            backpointers.append(candidates.argmax(axis=0))
            scores = candidates.max(axis=0)
        path = [int(scores.argmax())]
        for pointers in reversed(backpointers):
            path.append(int(pointers[path[-1]]))
        return np.array(path[::-1])
