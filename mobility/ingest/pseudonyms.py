"""Pseudonyms: the job seeker's IDX never goes past the reading of a file.

``seeker_id`` is HMAC-SHA256(key, IDX) in hex: stable across batches (so spells, changes and hires of one
person join), impossible to reverse or to recompute without the key (unlike a plain hash of a short
numeric id, which anyone can enumerate). It is computed with Spark's native ``sha2`` following RFC 2104,
so no Python runs per record. The key's derived pads are literals of the query plan: plans of ingestion
are never logged.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

_BLOCK = 64  # SHA-256 block size in bytes


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonym(idx: Column, key: bytes) -> Column:
    """HMAC-SHA256 of ``idx`` (UTF-8) under ``key``, as 64 hex characters; null stays null."""
    inner_pad, outer_pad = _pads(key)
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), F.encode(idx, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(outer_pad), inner), 256)
