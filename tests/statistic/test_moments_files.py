"""Saved statistics: Moments.save is atomic under concurrent writers, Moments.load
refuses every damaged or foreign file with a ValueError naming it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from typing import Any

import numpy as np
import pytest
from numpy.lib import format as npy

import svcca
from svcca import Moments


def stat(seed=0, n=200, p=5, q=3, precision="float64"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 3.0
    Y = X[:, :q] @ rng.standard_normal((q, q)) + rng.standard_normal((n, q))
    return Moments.from_arrays(X, Y, precision=precision)


def same(a: Moments, b: Moments) -> bool:
    return (
        a.n == b.n
        and a.precision == b.precision
        and all(
            np.array_equal(getattr(a, k), getattr(b, k))
            for k in ("mean_x", "mean_y", "sxx", "syy", "sxy")
        )
    )


def fields(m: Moments, version: int | None = 2) -> dict[str, np.ndarray]:
    out = {
        "n": np.int64(m.n),
        "mean_x": m.mean_x,
        "mean_y": m.mean_y,
        "sxx": m.sxx,
        "syy": m.syy,
        "sxy": m.sxy,
        "precision": np.str_(m.precision),
    }
    if version is not None:
        out["format_version"] = np.int64(version)
    return out


def npy_bytes(a) -> bytes:
    buf = io.BytesIO()
    npy.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def write_npz(path, members: dict) -> str:
    """An .npz of the given members (arrays, or raw .npy bytes), as np.savez lays it out."""
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in members.items():
            zf.writestr(key + ".npy", value if isinstance(value, bytes) else npy_bytes(value))
    return os.fspath(path)


# ---------------------------------------------------------------------- round trip
def test_round_trip_is_exact_and_versioned(tmp_path):
    for precision in ("float64", "float32"):
        m = stat(precision=precision)
        path = tmp_path / f"m_{precision}.stat"  # any name: saved at exactly this path
        m.save(path)
        assert same(Moments.load(path), m)
        with np.load(path, allow_pickle=False) as data:
            assert int(data["format_version"]) == 3
    assert sorted(os.listdir(tmp_path)) == ["m_float32.stat", "m_float64.stat"]
    # the sums' units (Moments.scale_x, scale_y) round-trip: a layer at 1e-300
    rng = np.random.default_rng(0)
    tiny = Moments.from_arrays(rng.standard_normal((50, 3)) * 1e-300, rng.standard_normal((50, 2)))
    assert tiny.scale_x < 1e-290 and tiny.scale_y == 1.0
    tiny.save(tmp_path / "tiny.npz")
    back = Moments.load(tmp_path / "tiny.npz")
    assert same(back, tiny) and (back.scale_x, back.scale_y) == (tiny.scale_x, tiny.scale_y)


def test_every_statistic_svcca_builds_loads_back(tmp_path):
    """The round-off allowances never refuse a real statistic: collinear and constant
    columns, large offsets and scales, float32 products, chunked and batched sums."""
    path = tmp_path / "m.npz"
    for seed in range(24):
        rng = np.random.default_rng(seed)
        n, p, q = int(rng.integers(2, 2000)), int(rng.integers(3, 8)), int(rng.integers(0, 5))
        offset, spread = 10.0 ** rng.uniform(-3, 8), 10.0 ** rng.uniform(-4, 4)
        X = rng.standard_normal((n, p)) * spread + offset
        X[:, 1] = 2 * X[:, 0]  # collinear: |S_01| = sqrt(S_00 S_11) exactly
        X[:, 2] = offset  # constant: S_22 = 0
        Y = None if q == 0 else np.hstack([3 * X[:, :1], rng.standard_normal((n, q - 1))])
        precision = "float32" if seed % 3 == 0 else "float64"
        if seed % 2:
            m = Moments.from_arrays(X, Y, chunk_size=int(rng.integers(1, 500)), precision=precision)
        else:
            m = Moments.from_batches(
                [
                    X[i : i + 97] if Y is None else (X[i : i + 97], Y[i : i + 97])
                    for i in range(0, n, 97)
                ],
                precision=precision,
            )
        m.save(path)
        assert same(Moments.load(path), m), seed


def test_files_without_a_version_are_version_1(tmp_path):
    m = stat()
    assert same(Moments.load(write_npz(tmp_path / "v1.npz", fields(m, version=None))), m)
    older = fields(m, version=None)
    del older["precision"]  # the first files had no precision either
    assert same(Moments.load(write_npz(tmp_path / "v0.npz", older)), m)


def test_empty_statistic_round_trips(tmp_path):
    m = Moments.empty(4, 2)
    m.save(tmp_path / "e.npz")
    back = Moments.load(tmp_path / "e.npz")
    assert back.n == 0 and (back.p, back.q) == (4, 2)


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    old, new = stat(0), stat(1)
    path = tmp_path / "m.npz"
    old.save(path)

    def disk_error(fd):  # an OSError injected into the write path (a full disk at fsync)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_error)
    with pytest.raises(OSError, match=r"Could not save Moments to '.*m\.npz': No space left"):
        new.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.npz"]
    assert same(Moments.load(path), old)


def test_save_errors_name_the_destination(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Could not save Moments to '.*nowhere.*'"):
        stat().save(tmp_path / "nowhere" / "m.npz")
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"Could not save Moments to '.*d\.npz'"):
        stat().save(tmp_path / "d.npz")
    assert os.listdir(tmp_path) == ["d.npz"]  # no temporary left


# ---------------------------------------------------------------------- concurrency
WRITER = """
import sys, numpy as np
from svcca import Moments
seed, path, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(seed)
X = rng.standard_normal((200, 40)) + 3.0
m = Moments.from_arrays(X, X[:, :30] * (seed + 1) + 1.0)
for _ in range(rounds):
    m.save(path)
"""


def _writer_env():
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(svcca.__file__))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


@pytest.mark.faults
def test_concurrent_savers_never_give_a_reader_a_torn_file(tmp_path):
    path = os.fspath(tmp_path / "shared.npz")
    rounds = 150
    expected = []
    for seed in (0, 1):  # each writer's statistic, saved once so the path exists
        subprocess.run(
            [sys.executable, "-c", WRITER, str(seed), path, "1"], env=_writer_env(), check=True
        )
        expected.append(Moments.load(path))
    assert not same(expected[0], expected[1])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(s), path, str(rounds)], env=_writer_env()
        )
        for s in (0, 1)
    ]
    loads, seen = 0, set()
    try:
        while any(p.poll() is None for p in procs) or loads < 20:
            m = Moments.load(path)  # must never fail: every reader sees a whole file
            which = [i for i, e in enumerate(expected) if same(m, e)]
            assert len(which) == 1, "a load returned neither writer's statistic"
            seen.add(which[0])
            loads += 1
    finally:
        for p in procs:
            p.wait(timeout=120)
    assert [p.returncode for p in procs] == [0, 0]
    assert loads >= 20
    assert os.listdir(tmp_path) == ["shared.npz"]  # no temporaries left by either writer


# ---------------------------------------------------------------------- refusals
def _refused(path, match):
    with pytest.raises(ValueError, match=match) as info:
        Moments.load(path)
    assert os.fspath(path) in str(info.value)  # every failure names the file
    return info


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "the file is empty"),
        (b"0.5 0.25\n1 2\n", r"not an \.npz \(zip\) archive: it starts with b'0.5 0.2"),
        (b"PK\x03\x04" + b"\0" * 40, "directory is missing or damaged"),
    ],
)
def test_foreign_files_are_named(tmp_path, content, match):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    info = _refused(path, match)
    assert "allow_pickle" not in str(info.value)


def test_single_npy_text_folder_and_missing_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 3)))
    _refused(tmp_path / "a.npy", r"holds a single \.npy array")
    _refused(tmp_path, "it is a folder, not a saved Moments file")
    _refused(tmp_path / "nothing.npz", "Could not read Moments from .*FileNotFoundError")


def test_truncated_files_are_refused(tmp_path):
    stat().save(tmp_path / "m.npz")
    raw = (tmp_path / "m.npz").read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 5):
        (tmp_path / "t.npz").write_bytes(raw[:cut])
        _refused(tmp_path / "t.npz", "damaged|truncated")


def _cases(m: Moments) -> list[tuple[str, dict, str]]:
    """(what, members, expected message) for hand-edited files."""
    f = fields(m)
    bad_sym = m.sxx.copy()
    bad_sym[0, 1] += 1e-6 * abs(m.sxx[0, 0])
    neg = m.sxx.copy()
    neg[2, 2] = -1.0
    cs = m.sxy.copy()
    cs[1, 1] = 2 * np.sqrt(m.sxx[1, 1] * m.syy[1, 1])
    nan = m.mean_y.copy()
    nan[0] = np.nan
    zero = fields(Moments.empty(5, 3))
    zero["sxy"] = np.ones((5, 3))
    return [
        ("missing", {k: v for k, v in f.items() if k != "sxy"}, r"lacks the arrays \['sxy'\]"),
        ("extra", {**f, "junk": np.zeros(2)}, r"holds arrays \['junk'\] that format version 2"),
        ("newer", {**f, "format_version": np.int64(99)}, "format version 99, newer than"),
        ("version0", {**f, "format_version": np.int64(0)}, "format version 0 does not exist"),
        ("version str", {**f, "format_version": np.str_("2")}, "format_version must be an int"),
        ("fractional n", {**f, "n": np.float64(200.5)}, "n must be an integer scalar"),
        ("n as array", {**f, "n": np.array([200])}, "n must be an integer scalar"),
        ("negative n", {**f, "n": np.int64(-1)}, r"n = -1 is not a sample count"),
        ("huge n", {**f, "n": np.uint64(2**63 + 5)}, r"is not a sample count .*2\^53"),
        ("float32 block", {**f, "sxx": m.sxx.astype(np.float32)}, "sxx must be float64"),
        ("int means", {**f, "mean_x": np.arange(5)}, "mean_x must be float64"),
        ("2-D mean", {**f, "mean_x": m.mean_x[None]}, "mean_x must be 1-D"),
        ("no X", {**f, "mean_x": np.zeros(0)}, "mean_x is empty"),
        ("shapes", {**f, "sxy": m.sxy.T.copy()}, r"sxy has shape \(3, 5\), but means"),
        ("precision", {**f, "precision": np.str_("float16")}, "precision must be 'float64'"),
        ("precision type", {**f, "precision": np.float64(1)}, "precision must be a string"),
        ("nan", {**f, "mean_y": nan}, "mean_y holds NaN or inf"),
        ("asymmetric", {**f, "sxx": bad_sym}, r"sxx is not symmetric: sxx\[0, 1\]"),
        ("swapped", {**f, "sxx": m.syy, "syy": m.sxx}, r"sxx has shape \(3, 3\)"),
        ("negative variance", {**f, "sxx": neg}, r"negative variance .*sxx\[2, 2\]"),
        ("cauchy-schwarz", {**f, "sxy": cs}, r"sxy\[1, 1\] = .* exceeds the Cauchy-Schwarz"),
        ("n=0 with sums", zero, "n = 0 but sxy is not zero"),
        (
            "object",
            {
                **f,
                "mean_x": b"\x93NUMPY\x01\x00v\x00{'descr': '|O', "
                b"'fortran_order': False, 'shape': (5,), }" + b" " * 58 + b"\n",
            },
            "Python objects|not a valid .npy header",
        ),
    ]


def test_every_hand_edit_is_refused_with_its_reason(tmp_path):
    m = stat()
    for i, (what, members, match) in enumerate(_cases(m)):
        path = write_npz(tmp_path / f"case{i}.npz", members)
        try:
            _refused(path, match)
        except AssertionError as exc:  # pragma: no cover - says which case failed
            raise AssertionError(f"case {what!r}: {exc}") from None


def test_huge_or_lying_headers_are_refused_before_allocation(tmp_path):
    m = stat()
    f = fields(m)
    # a 60,000-byte header (version 1.0 allows 65,535)
    body = b"{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }"
    huge = npy.MAGIC_PREFIX + b"\x01\x00" + (60000).to_bytes(2, "little") + body
    huge += b" " * (60000 - len(body) - 1) + b"\n"
    _refused(write_npz(tmp_path / "h.npz", {**f, "mean_x": huge}), "not a valid .npy header")
    # a version 2.0 header claiming 2 GiB: refused from its length field alone
    claim = npy.MAGIC_PREFIX + b"\x02\x00" + (2**31).to_bytes(4, "little") + body
    _refused(write_npz(tmp_path / "c.npz", {**f, "mean_x": claim}), "not a valid .npy header")
    # a header promising a 10^5 x 10^5 block (80 GB) that the entry does not hold
    hdr = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }"
    hdr = hdr + b" " * (118 - len(hdr)) + b"\n"
    lie = npy.MAGIC_PREFIX + b"\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + b"\0" * 64
    _refused(
        write_npz(tmp_path / "l.npz", {**f, "sxx": lie}),
        r"declared as float64 of shape \(100000, 100000\) \(80000000000 bytes\)",
    )
    short = npy.MAGIC_PREFIX + b"\x01\x00"
    hdr = b"{'descr': '<f8', 'fortran_order': False, 'shape': (5, 5), }"
    hdr = hdr + b" " * (118 - len(hdr)) + b"\n"
    short += len(hdr).to_bytes(2, "little") + hdr + m.sxx.tobytes()[:80]
    _refused(
        write_npz(tmp_path / "s.npz", {**f, "sxx": short}),
        r"declared as float64 of shape \(5, 5\) \(200 bytes\) but its zip entry holds 80",
    )


def test_merge_in_place_checks_what_merge_checks():
    big, small = Moments.empty(8, 6), stat(p=1, q=1)
    with pytest.raises(ValueError, match=r"Cannot merge Moments of widths \(p=1, q=1\) into"):
        big.merge_in_place(small)
    with pytest.raises(ValueError, match=r"Cannot merge Moments of widths \(p=8, q=6\) and"):
        big.merge(small)
    with pytest.raises(TypeError, match="merge_in_place expects a Moments object; got dict"):
        big.merge_in_place({})
    assert big.n == 0 and big.sxx.shape == (8, 8)  # nothing was changed


# ---------------------------------------------------------------------- bit flips
def _flip_positions(size: int, full: bool) -> list[int]:
    if full:
        return list(range(size))
    rng = np.random.default_rng(18)  # seeded sample
    return sorted(rng.choice(size, size=min(size, 150), replace=False).tolist())


def _flip_case(tmp_path, full):
    m = stat(seed=3)
    m.save(tmp_path / "m.npz")
    raw = (tmp_path / "m.npz").read_bytes()
    for pos in _flip_positions(len(raw), full):
        for bit in (1, 16, 128):
            b = bytearray(raw)
            b[pos] ^= bit
            (tmp_path / "f.npz").write_bytes(bytes(b))
            t0 = time.perf_counter()
            try:
                got = Moments.load(tmp_path / "f.npz")
            except ValueError as exc:
                assert os.fspath(tmp_path / "f.npz") in str(exc)
                continue
            finally:
                assert time.perf_counter() - t0 < 5.0
            # a flip in zip metadata that changes nothing may load: never other numbers
            assert same(got, m), f"flip of bit {bit} at byte {pos} gave other numbers"


@pytest.mark.faults
def test_flipped_bits_never_give_other_numbers(tmp_path):
    _flip_case(tmp_path, full=False)


@pytest.mark.faults
@pytest.mark.slow
def test_flipped_bits_never_give_other_numbers_every_byte(tmp_path):
    _flip_case(tmp_path, full=True)


def test_version_3_units_are_checked(tmp_path):
    m = stat()
    f = {**fields(m, version=3), "scale_x": np.float64(2.0**-40), "scale_y": np.float64(1.0)}
    fields_back: Any = Moments.load(write_npz(tmp_path / "ok.npz", f))
    assert fields_back.n == m.n and fields_back.scale_x == 2.0**-40
    for bad in (3.0, 0.0, -2.0, np.inf):
        path = write_npz(tmp_path / "bad.npz", {**f, "scale_x": np.float64(bad)})
        _refused(path, "scale_x must be a positive power of two")
    path = write_npz(tmp_path / "v3.npz", {**f, "scale_y": np.float32(1.0)})
    _refused(path, "scale_y must be a float64 scalar")


def test_a_version_3_file_loads_and_a_newer_one_is_refused(tmp_path):
    m = stat()
    m.save(tmp_path / "now.npz")
    with np.load(tmp_path / "now.npz", allow_pickle=False) as now:
        assert int(now["format_version"]) == 3  # what this version writes
    f = {**fields(m, version=3), "scale_x": np.float64(1.0), "scale_y": np.float64(1.0)}
    assert Moments.load(write_npz(tmp_path / "v3.npz", f)).n == m.n
    path = write_npz(tmp_path / "v4.npz", {**f, "format_version": np.int64(4)})
    _refused(path, "format version 4, newer than this svcca reads")


def test_blocks_no_samples_could_have_made_are_refused(tmp_path):
    """Each entry within Cauchy-Schwarz, jointly impossible (was: loaded, then cca raised
    FloatingPointError "outside [0, inf]" instead of a ValueError naming the file)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    m = Moments.from_arrays(X, X[:, :2] @ rng.standard_normal((2, 3)))
    S = m.sxx.copy()
    r = np.sqrt(np.outer(np.diag(S), np.diag(S)))
    S[0, 1] = S[1, 0] = 0.99 * r[0, 1]
    S[0, 2] = S[2, 0] = -0.99 * r[0, 2]
    S[1, 2] = S[2, 1] = 0.99 * r[1, 2]
    path = tmp_path / "edited.npz"
    Moments(m.n, m.mean_x, m.mean_y, S, m.syy, m.sxy).save(path)
    with pytest.raises(ValueError, match=r"edited.npz.*not positive semi-definite beyond"):
        Moments.load(path)
    sxy = m.sxy.copy()  # a cross block that no samples share with these sides
    sxy[:2] = np.sqrt(np.outer(np.diag(m.sxx)[:2], np.diag(m.syy))) * 0.999
    sxy[1] *= -1
    Moments(m.n, m.mean_x, m.mean_y, m.sxx, m.syy, sxy).save(path)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        Moments.load(path)


def test_odd_construction_arguments_are_refused_with_what_to_give():
    with pytest.raises(ValueError, match="p must be a non-negative int; got True"):
        Moments.empty(True)
    X = np.ones((5, 2))
    with pytest.raises(TypeError, match=r"A batch is X, or a pair \(X, Y\); got a tuple of 3"):
        Moments.from_batches([(X, X, X)])
