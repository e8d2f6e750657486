"""The wkv6 operator of RWKV6 (Finch), in portable `keras.ops`: exact in float32 on every backend.

Per head, with receptance `r`, key `k`, value `v`, log-decay `log_w` (`w = exp(log_w)`, in (0, 1])
and bonus `u`, the state `S` (`head_size` keys x `head_size` values) runs as BlinkDL's x060 code:

    y_t = r_t @ (u * k_t^T v_t + S)        S <- k_t^T v_t + w_t * S

(`u` and `w_t` scale the key axis). Two forms give the same numbers:

- `wkv6_recurrent`: the recurrence, one token per scan step (decoding, and the reference);
- `wkv6_chunked`: the prefill / training form. Within a chunk of `chunk_size` tokens every
  output is a masked product of the chunk's tokens, the decay between tokens `s < t` being
  `exp(sum_{s<j<t} log_w_j)`, computed from cumulative sums as a difference that is never positive
  (no overflow, no division by a small decay); only the chunk states run in sequence (`ops.scan`
  over `T / chunk_size` steps).

Shapes: `r, k, v, log_w` `(batch, T, heads, head_size)`, `u` `(heads, head_size)`, `state`
`(batch, heads, head_size, head_size)`, keys first (the `rwkv` package's layout). Each returns
`(y, state)` with `y` `(batch, T, heads, head_size)`, in float32.
"""

from b4k3_ops import ops

# A finite stand-in for -inf in the masked exponents (its exp is 0, and so is its gradient).
_NEGLIGIBLE = -1e30


def _float32(*tensors):
    return [ops.cast(tensor, "float32") for tensor in tensors]


def wkv6_step(r, k, v, log_w, u, state):
    """One token: `r, k, v, log_w` `(batch, heads, head_size)`. Returns `(y, state)`."""
    kv = k[..., :, None] * v[..., None, :]
    y = ops.einsum("bhi,bhij->bhj", r, u[..., None] * kv + state)
    return y, kv + ops.exp(log_w)[..., None] * state


def wkv6_recurrent(r, k, v, log_w, u, state):
    """The recurrence, one token per step of `ops.scan`."""
    r, k, v, log_w, u, state = _float32(r, k, v, log_w, u, state)

    def step(carry, token):
        k_t, v_t, log_w_t = token[..., 0, :], token[..., 1, :], token[..., 2, :]
        return k_t[..., :, None] * v_t[..., None, :] + ops.exp(log_w_t)[..., None] * carry, carry

    # The scan yields the state each token reads (Keras' TensorFlow scan needs outputs shaped as
    # the carry, and one input tensor when the length is unknown); the outputs are then one
    # product per token.
    state, states_read = ops.scan(step, state, ops.moveaxis(ops.stack([k, v, log_w], axis=-2), 1, 0))
    states_read = ops.moveaxis(states_read, 0, 1) + u[..., None] * k[..., :, None] * v[..., None, :]
    return ops.einsum("bthi,bthij->bthj", r, states_read), state


def wkv6_chunked(r, k, v, log_w, u, state, chunk_size=32):
    """The chunked form: parallel within chunks of `chunk_size` tokens, chunk states in sequence.

    The sequence is padded to a multiple of `chunk_size` with tokens that leave the state as it is
    (zero key and value, decay 1), and the padding's outputs are dropped.
    """
    r, k, v, log_w, u, state = _float32(r, k, v, log_w, u, state)
    batch_size, length = ops.shape(r)[0], ops.shape(r)[1]
    heads, head_size = r.shape[2], r.shape[3]
    padding = [[0, 0], [0, (-length) % chunk_size], [0, 0], [0, 0]]

    def chunks(tensor):  # (batch, T, H, N) -> (chunks, batch, H, L, N)
        tensor = ops.reshape(ops.pad(tensor, padding), (batch_size, -1, chunk_size, heads, head_size))
        return ops.transpose(tensor, (1, 0, 3, 2, 4))

    r, k, v, log_w = (chunks(tensor) for tensor in (r, k, v, log_w))
    decay_to = ops.cumsum(log_w, axis=-2)  # sum_{j<=t}
    decay_before = ops.pad(decay_to[..., :-1, :], [[0, 0], [0, 0], [0, 0], [1, 0], [0, 0]])  # sum_{j<t}
    chunk_decay = decay_to[..., -1:, :]

    # Within the chunk: token s < t reaches t decayed by exp(decay_before[t] - decay_to[s]) <= 1.
    earlier = ops.arange(chunk_size)[None, :] < ops.arange(chunk_size)[:, None]  # [t, s]: s < t
    exponent = decay_before[..., :, None, :] - decay_to[..., None, :, :]
    decays = ops.exp(ops.where(earlier[..., None], exponent, _NEGLIGIBLE))
    scores = ops.einsum("cbhti,cbhtsi->cbhts", r, decays * k[..., None, :, :])
    bonus = ops.sum(r * u[:, None, :] * k, axis=-1, keepdims=True)
    y_within = ops.matmul(scores, v) + bonus * v
    # What each chunk adds to the state, and how the state reaching it decays across it.
    r_decayed = r * ops.exp(decay_before)
    state_added = ops.einsum("cbhsi,cbhsj->cbhij", k * ops.exp(chunk_decay - decay_to), v)
    state_kept = ops.moveaxis(ops.exp(chunk_decay), -2, -1)  # (chunks, batch, H, N, 1)

    def step(carry, chunk):  # chunk: what the chunk adds, then how much of the state it keeps
        return chunk[..., -1:] * carry + chunk[..., :-1], carry

    # The scan yields the state entering each chunk (Keras' TensorFlow scan needs outputs shaped
    # as the carry, and one input tensor when the number of chunks is unknown); what it adds to
    # the chunk's outputs is then one batched product.
    state, states_entering = ops.scan(step, state, ops.concatenate([state_added, state_kept], axis=-1))
    y = ops.transpose(y_within + ops.matmul(r_decayed, states_entering), (1, 0, 3, 2, 4))
    y = ops.reshape(y, (batch_size, -1, heads, head_size))[:, :length]
    return y, state


KERNELS = {"chunked": wkv6_chunked, "recurrent": wkv6_recurrent}


def wkv6(r, k, v, log_w, u, state, kernel="chunked", chunk_size=32):
    """wkv6 with the `kernel` form ('chunked' or 'recurrent'); one token always takes the step."""
    if r.shape[1] == 1:
        y, state = wkv6_step(*_float32(r[:, 0], k[:, 0], v[:, 0], log_w[:, 0], u, state))
        return y[:, None], state
    if kernel == "chunked":
        return wkv6_chunked(r, k, v, log_w, u, state, chunk_size)
    return KERNELS[kernel](r, k, v, log_w, u, state)
