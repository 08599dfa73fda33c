"""Codecs (layer 1, beside the models): target encoding, decoding, flip test and loss of one kind
of head output, registered by name. :class:`Codec` is the contract; :func:`register_codec` adds
one (a new codec is one module in this package, found at the first lookup, or a class
registered from a test / plugin);
:func:`build_codec` makes one; ``msra_heatmap`` (:class:`MSRAHeatmap`) is the papers' codec, ``udp``
(:class:`UDPHeatmap`) unbiased data processing.
"""

from hrbench.codecs.base import Codec, Decoded, build_codec, list_codecs, register_codec
from hrbench.codecs.heatmap import MSRAHeatmap
from hrbench.codecs.udp import UDPHeatmap

__all__ = ["Codec", "Decoded", "MSRAHeatmap", "UDPHeatmap", "build_codec", "list_codecs", "register_codec"]
