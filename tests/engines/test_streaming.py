"""Streaming inputs: memmaps in constant memory, datasets, iterators (two-pass SVCCA:
test_two_pass.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import svcca
from conftest import latent_pair

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def pair(n=2000, p=12, q=9, seed=0):
    """Two related layers, X through tanh and offset by 5 (a mean to shift away)."""
    return latent_pair(
        n, p, q, seed=seed, latent=4, x_tanh=True, x_noise=0.1, x_offset=5.0, y_noise=0.3
    )


class FakeDataset:
    """Quacks like h5py.Dataset / zarr.Array: shape, dtype, slicing into NumPy."""

    def __init__(self, a):
        self._a = a
        self.shape, self.dtype, self.ndim = a.shape, a.dtype, a.ndim
        self.reads = 0
        self.rows: list[int] = []  # rows returned by each read

    def __getitem__(self, key):
        self.reads += 1
        out = np.array(self._a[key])
        self.rows.append(out.shape[0] if out.ndim else 1)
        return out


MEASURES = [
    lambda a, b: svcca.cca(a, b).correlations,
    lambda a, b: np.atleast_1d(svcca.svcca(a, b, keep=0.95).score),
    lambda a, b: np.atleast_1d(svcca.pwcca(a, b).score),
    lambda a, b: svcca.pls(a, b).singular_values,
]


@pytest.mark.parametrize("f", MEASURES, ids=["cca", "svcca", "pwcca", "pls"])
def test_memmaps_and_datasets_give_in_memory_results(tmp_path, f):
    X, Y = pair()
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    ref = f(X, Y)
    mx, my = np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r")
    np.testing.assert_allclose(f(mx, my), ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(f(FakeDataset(X), FakeDataset(Y)), ref, rtol=0, atol=1e-10)


def test_pca_streams_a_memmap(tmp_path):
    X, _ = pair()
    np.save(tmp_path / "x.npy", X)
    got = svcca.pca(np.load(tmp_path / "x.npy", mmap_mode="r"))
    np.testing.assert_allclose(got.eigenvalues, svcca.pca(X).eigenvalues, atol=1e-10)


def test_datasets_are_read_in_chunks():
    X, Y = pair(n=3000)
    dx, dy = FakeDataset(X), FakeDataset(Y)
    got = svcca.pairwise({"x": dx, "y": dy}, measure="cca", chunk_size=500)
    for d in (dx, dy):  # never more than a chunk at once, every row read in each pass
        assert max(d.rows) <= 500 and sum(d.rows) % 3000 == 0 and sum(d.rows) > 0
    ref = svcca.pairwise({"x": X, "y": Y}, measure="cca")
    np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=1e-10)


def test_memmap_streaming_keeps_resident_memory_flat(tmp_path):
    """Reading 2 x 48 MB of memmapped files must not grow peak RSS by the file size."""
    n, p = 187_500, 64
    rng = np.random.default_rng(0)
    for name in ("x", "y"):
        a = np.lib.format.open_memmap(tmp_path / f"{name}.npy", "w+", np.float32, (n, p))
        for s in range(0, n, 62_500):
            a[s : s + 62_500] = rng.standard_normal((62_500, p), dtype=np.float32)
        a.flush()
        del a
    script = textwrap.dedent(
        f"""
        import numpy as np, svcca
        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024
        X = np.load({str(tmp_path / "x.npy")!r}, mmap_mode="r")
        Y = np.load({str(tmp_path / "y.npy")!r}, mmap_mode="r")
        before = hwm()
        m = svcca.Moments.from_arrays(X, Y, chunk_size=4096)
        print(hwm() - before, svcca.cca(m).score)
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    growth_mb, score = map(float, out.stdout.split())
    # Files are 2 x 48 MB; read straight through they would stay resident (+96 MB).
    # One float64 chunk of both is 4 MiB.
    assert growth_mb < 40, out.stdout
    assert 0.0 < score < 0.1  # independent noise: no similarity


def test_releasing_memmap_pages_leaves_data_and_other_arrays_alone(tmp_path):
    """Streaming hands a read-only memmap's pages back to the kernel chunk by chunk: the
    moments are those of the data, a copy-on-write edit survives, the file is unchanged
    (was tested on the private release_rows; this is the behaviour it protects)."""
    a = np.arange(200_000, dtype=np.float64).reshape(-1, 100)
    a = np.sin(a)  # not collinear: real moments
    np.save(tmp_path / "a.npy", a)
    for mode in ("r", "c", "r+"):
        mm = np.load(tmp_path / "a.npy", mmap_mode=mode)
        if mode == "c":
            mm[0, 0] = -1.0  # a private edit must survive (no page drop for "c")
        want = np.array(mm)
        for view, ref in ((mm, want), (mm[:, ::3], want[:, ::3])):  # a strided view too
            got = svcca.Moments.from_arrays(view, chunk_size=100)
            exact = svcca.Moments.from_arrays(np.ascontiguousarray(ref), chunk_size=100)
            np.testing.assert_array_equal(got.sxx, exact.sxx)
            np.testing.assert_array_equal(got.mean_x, exact.mean_x)
        assert mm[0, 0] == (-1.0 if mode == "c" else a[0, 0])
        np.testing.assert_array_equal(mm[1:], a[1:])
        del mm
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), a)


# ---------------------------------------------------------------------- iterators
def test_iterators_of_batches():
    X, Y = pair(n=1200)
    ref = svcca.cca(X, Y).correlations
    cuts = [0, 100, 650, 1200]
    xs = (X[a:b] for a, b in zip(cuts, cuts[1:], strict=False))
    ys = (Y[a:b] for a, b in zip(cuts, cuts[1:], strict=False))
    np.testing.assert_allclose(svcca.cca(xs, ys).correlations, ref, atol=1e-10)
    pairs = ((X[a:b], Y[a:b]) for a, b in zip(cuts, cuts[1:], strict=False))
    np.testing.assert_allclose(svcca.cca(pairs).correlations, ref, atol=1e-10)
    np.testing.assert_allclose(
        svcca.pca(iter([X[:600], X[600:]])).eigenvalues,
        svcca.pca(X).eigenvalues,
        atol=1e-10,
    )


def test_iterator_errors_name_the_batch():
    X, Y = pair(n=300)
    with pytest.raises(
        ValueError, match=r"X \(batch 1\) has 5 features but these Moments were built for 12"
    ):
        svcca.cca(iter([X[:100], X[100:, :5]]), iter([Y[:100], Y[100:]]))
    with pytest.raises(ValueError, match="Y ran out after 1 batches"):
        svcca.cca(iter([X[:100], X[100:]]), iter([Y[:100]]))
    with pytest.raises(TypeError, match="X is an iterator of batches but Y is not"):
        svcca.cca(iter([X]), Y)
    with pytest.raises(TypeError, match="Y is an iterator of batches but X is not"):
        svcca.cca(X, iter([Y]))
    with pytest.raises(TypeError, match=r"must yield \(x, y\) pairs"):
        svcca.cca(iter([X]))
    with pytest.raises(ValueError, match="received no batches"):
        svcca.cca(iter([]), iter([]))
    # internal: no public one-representation function takes a second positional argument
    from svcca._sources import to_moments

    with pytest.raises(TypeError, match="takes one representation"):
        to_moments(X, Y, need_y=False)


def test_moments_object_is_accepted_directly():
    X, Y = pair(n=500)
    m = svcca.Moments.from_arrays(X, Y)
    assert svcca.svcca(m, keep=3).score == pytest.approx(svcca.svcca(X, Y, keep=3).score, abs=1e-12)


# ---------------------------------------------------------------------- files and sources
def test_file_errors_name_the_file(tmp_path):
    """A representation given as a path (pairwise reads .npy files) is refused with the
    file's name and the cause."""
    X, _ = pair(n=100)
    np.save(tmp_path / "ok.npy", X)
    raw = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.npy").write_text("not an array")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "two.npz", a=X, b=X)
    ok = tmp_path / "ok.npy"
    assert svcca.pairwise([ok, ok], measure="cca").values.shape == (2, 2)
    for bad, cause in (
        ("trunc.npy", "is truncated: its header promises"),
        ("text.npy", r"is not a NumPy \.npy file"),
        ("obj.npy", "pickles are never loaded"),
    ):
        with pytest.raises(ValueError, match=rf"{bad}' {cause}" if bad != "obj.npy" else cause):
            svcca.pairwise([tmp_path / bad, ok])
    with pytest.raises(ValueError, match=r"holds several arrays \(an \.npz\)"):
        svcca.pairwise([tmp_path / "two.npz", ok])
    with pytest.raises(ValueError, match="missing.npy': no such file"):
        svcca.pairwise([ok, tmp_path / "missing.npy"])


def test_dataset_errors_name_the_representation():
    ok = np.ones((3, 2))
    with pytest.raises(ValueError, match="'r' must be 2-D"):
        svcca.pairwise({"r": FakeDataset(np.zeros((3, 2, 2))), "s": ok})
    with pytest.raises(TypeError, match="'r' must hold real numbers"):
        svcca.pairwise({"r": FakeDataset(np.zeros((3, 2), dtype=complex)), "s": ok})
    with pytest.raises(ValueError, match="'r' is empty"):
        svcca.pairwise({"r": FakeDataset(np.zeros((0, 2))), "s": ok})
    with pytest.raises(TypeError, match="'r' is a Moments object"):
        svcca.pairwise({"r": svcca.Moments.empty(2), "s": ok})

    class Broken(FakeDataset):
        def __getitem__(self, key):
            raise OSError("disk on fire")

    with pytest.raises(ValueError, match="Could not read rows 0:3 of representation 'b'"):
        svcca.pairwise({"b": Broken(np.zeros((3, 2))), "c": ok})


def test_moments_save_interrupted_leaves_no_file(tmp_path, monkeypatch):
    m = svcca.Moments.from_arrays(*pair(n=50))

    def boom(file, **kw):  # np.savez writes into the open temporary file
        file.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        m.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- two-pass SVCCA


