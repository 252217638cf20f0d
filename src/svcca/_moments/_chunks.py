"""How many rows a chunk of a host pass holds (one float64 chunk of ``[X Y]`` of about
32 MiB; float32 products over at most ``FLOAT32_CHUNK_ROWS`` rows)."""

from __future__ import annotations

from svcca._validation import Precision, check_chunk_size

__all__ = ["FLOAT32_CHUNK_ROWS", "chunk_rows"]

# Rows per chunk are chosen so that one float64 chunk of [X Y] is about this many bytes:
# large enough for an efficient GEMM, small enough to keep memory O(p^2 + chunk).
_CHUNK_BYTES = 32 * 2**20
# float32 products of one chunk are dot products of up to this many terms; their
# round-off grows with the length (about sqrt(rows) eps_32 typically, rows eps_32 at
# worst), so chunks stay short and the sums across chunks are float64.
FLOAT32_CHUNK_ROWS = 4096


def chunk_rows(
    width: int, chunk_size: int | None, precision: Precision = "float64", n: int | None = None
) -> int:
    """Rows per chunk: ``chunk_size`` (checked: an int >= 1) or one chosen from the width;
    at most ``n`` (the rows there are, when known: a chunk buffer may be allocated)."""
    chunk_size = check_chunk_size(chunk_size)
    if precision == "float32":
        if chunk_size is not None:
            rows = min(chunk_size, FLOAT32_CHUNK_ROWS)
        else:
            rows = max(256, min(FLOAT32_CHUNK_ROWS, _CHUNK_BYTES // (4 * max(width, 1))))
    elif chunk_size is not None:
        rows = chunk_size
    else:
        rows = max(256, _CHUNK_BYTES // (8 * max(width, 1)))
    return rows if n is None else max(1, min(rows, n))
