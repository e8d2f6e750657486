"""Applying a function to every item of an iterable in worker processes or threads
(bert4keras3's `parallel_apply`), with a bounded input queue so a large iterable streams."""

import multiprocessing
import multiprocessing.dummy
import queue

import numpy as np

_KEEP = "keep NumPy's random state"


def _work(func, in_queue, out_queue, seed_queue):
    """A worker's loop: take its seed (one per worker is queued; `_KEEP` leaves NumPy's state
    alone), then apply `func` to `(index, item)` pairs until the pool is terminated."""
    seed = seed_queue.get()
    if seed != _KEEP:
        np.random.seed(seed)
    while True:
        index, item = in_queue.get()
        out_queue.put((index, func(item)))


def parallel_apply_generator(func, iterable, workers, max_queue_size, dummy=False, random_seeds=True):
    """Yields `(index, func(item))` for every item of `iterable`, in the order the workers finish.

    Args:
        func: the function (with processes and a non-fork start method it must be picklable).
        iterable: the items, read as the queue has room.
        workers: number of worker processes (threads with `dummy=True`).
        max_queue_size: the most items waiting for a worker.
        dummy: threads instead of processes.
        random_seeds: each worker's NumPy seed: True for fresh ones, a list of seeds, or
            False/None to leave NumPy's state alone.
    """
    backend = multiprocessing.dummy if dummy else multiprocessing
    in_queue, out_queue, seed_queue = backend.Queue(max_queue_size), backend.Queue(), backend.Queue()
    if random_seeds is True:
        random_seeds = [None] * workers  # a fresh seed per worker
    seeds = list(random_seeds or [])[:workers]
    for seed in seeds + [_KEEP] * (workers - len(seeds)):
        seed_queue.put(seed)
    pool = backend.Pool(workers, _work, (func, in_queue, out_queue, seed_queue))
    try:
        submitted = received = 0
        for index, item in enumerate(iterable):
            while True:
                try:
                    in_queue.put((index, item), block=False)
                    break
                except queue.Full:
                    yield out_queue.get()
                    received += 1
            submitted += 1
            while not out_queue.empty():
                yield out_queue.get()
                received += 1
        while received < submitted:
            yield out_queue.get()
            received += 1
    finally:
        pool.terminate()


def parallel_apply(
    func, iterable, workers, max_queue_size, callback=None, dummy=False, random_seeds=True, unordered=True
):
    """`func` applied to every item of `iterable` by `workers` processes (threads with `dummy`).

    Returns the results (in finishing order, or in input order with `unordered=False`), or,
    with `callback`, calls it on each result as it comes and returns None. The other arguments
    are `parallel_apply_generator`'s.
    """
    results = parallel_apply_generator(func, iterable, workers, max_queue_size, dummy, random_seeds)
    if callback is not None:
        for _, result in results:
            callback(result)
        return None
    if unordered:
        return [result for _, result in results]
    return [result for _, result in sorted(results, key=lambda pair: pair[0])]
