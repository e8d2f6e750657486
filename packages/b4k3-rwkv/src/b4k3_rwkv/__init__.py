"""RWKV6 for b4k3: its layers, the wkv kernel, the RWKV6 model and state tuning."""

from b4k3_rwkv.checkpoint import RWKVCheckpoint
from b4k3_rwkv.layers import ChannelMix, DecomposerDense, TimeMix, TimeShift
from b4k3_rwkv.rwkv6 import RWKV6
from b4k3_rwkv.wkv import wkv6, wkv6_chunked, wkv6_recurrent, wkv6_step

__version__ = "0.2.0"

__all__ = [
    "RWKV6",
    "ChannelMix",
    "DecomposerDense",
    "RWKVCheckpoint",
    "TimeMix",
    "TimeShift",
    "wkv6",
    "wkv6_chunked",
    "wkv6_recurrent",
    "wkv6_step",
]
