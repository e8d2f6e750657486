"""Piecewise-linear schedules (learning-rate warm-up and decay, loss weights) as tensors."""

import itertools

from keras import ops


def piecewise_linear(t, schedule, from_zero=True):
    """The value at step `t` of the schedule `{step: value}`, linear between the given steps and
    constant after the last, e.g. `{1000: 1, 2000: 0.1}`: 0 -> 1 over the first 1000 steps, then
    down to 0.1 at step 2000, 0.1 afterwards. With `from_zero` the schedule starts at `(0, 0.0)`
    unless it names step 0; otherwise it is constant before its first step.
    """
    if not schedule:
        raise ValueError("piecewise_linear: the schedule is empty; give {step: value, ...}")
    points = sorted(schedule.items())
    if from_zero and points[0][0] != 0:
        points = [(0, 0.0), *points]
    t = ops.cast(t, "float32")
    value = ops.zeros_like(t) + points[0][1]
    for (t0, x0), (t1, x1) in itertools.pairwise(points):
        value = ops.where(t >= t0, x0 + (x1 - x0) / (t1 - t0) * (t - t0), value)
    return ops.where(t >= points[-1][0], ops.zeros_like(t) + points[-1][1], value)
