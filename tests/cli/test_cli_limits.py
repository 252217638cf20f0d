"""Every numeric option at its limits: a right answer, or one line and status 2.

``--bandwidth`` at 1e-300 and 1e300 ended in tracebacks (``sigma^2`` over- and
underflowed); ``--chunk-size 1000000000000`` tried to allocate a 73 TiB chunk buffer; a
``MemoryError`` printed a traceback with status 1. The library's own checks are pinned
through the Python API next to the command line.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import svcca
from svcca._cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svcca", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((200, 6))
    B = np.tanh(A @ rng.standard_normal((6, 4))) + 0.1 * rng.standard_normal((200, 4))
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    return tmp_path, A, B


def one_error_line(err: str, match: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert match in lines[0], lines[0]


# ---------------------------------------------------------------------- RBF widths
@pytest.mark.parametrize(
    ("bandwidth", "message"),
    [
        ("1e-300", "bandwidth=1e-300 is too narrow an RBF width for these data"),
        ("1e-160", "the kernel is the identity and RBF CKA would be 1 whatever the data"),
        ("1e300", "bandwidth=1e+300 is too wide an RBF width for these data"),
        ("1e160", "or kernel='linear' (RBF CKA's limit for wide kernels)"),
    ],
)
def test_extreme_bandwidths_exit_2_with_the_range_that_works(files, capsys, bandwidth, message):
    d, _, _ = files
    code = main(["compare", str(d / "a.npy"), str(d / "b.npy"), "--measure", "cka_rbf",
                 "--bandwidth", bandwidth])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2
    one_error_line(err, message)


def test_rbf_width_limits_name_the_bound_in_the_api(files):
    _, A, B = files
    with pytest.raises(ValueError, match=r"Use bandwidth >= [0-9.e+-]+ of the median pairwise"):
        svcca.cka(A, B, kernel="rbf", bandwidth=1e-300)
    with pytest.raises(ValueError, match=r"sigma=1e-300 is too narrow.*Use sigma >= [0-9.e+-]+"):
        svcca.cka(A, B, kernel="rbf", sigma=1e-300)
    with pytest.raises(ValueError, match=r"sigma=1e\+300 is too wide.*Use sigma <= [0-9.e+-]+"):
        svcca.cka(A, B, kernel="rbf", sigma=1e300, debiased=True)
    # The bounds it names work.
    narrow = float(str(pytest.raises(ValueError, svcca.cka, A, B, kernel="rbf", bandwidth=1e-9)
                       .value).split("bandwidth >= ")[1].split()[0])  # fmt: skip
    assert 0 < svcca.cka(A, B, kernel="rbf", bandwidth=narrow * 1.01).score <= 1


@pytest.mark.parametrize("debiased", [False, True])
def test_wide_rbf_kernels_keep_their_digits(files, debiased):
    """As the bandwidth grows RBF CKA tends to linear CKA (the centred kernel is
    ``-D / (2 sigma^2)`` to first order, whose centring is the linear Gram matrix), with an
    error of order ``max d^2 / sigma^2``. ``exp`` would round the kernel to 1 - t with
    ``t`` ~ 1e-12 and lose all but four digits; ``expm1`` keeps them."""
    _, A, B = files
    lin = svcca.cka(A, B, debiased=debiased).score
    for bw in (1e4, 1e6, 1e20):
        rbf = svcca.cka(A, B, kernel="rbf", bandwidth=bw, debiased=debiased).score
        # d_max^2 / median d^2 is below 1e2 for these Gaussian data: error <= 1e2 / bw^2,
        # plus the round-off of the n x n sums (n eps).
        assert rbf == pytest.approx(lin, abs=1e2 / bw**2 + 200 * np.finfo(float).eps * 10)


# ---------------------------------------------------------------------- chunk sizes
def test_a_huge_chunk_size_is_clamped_to_the_rows(files, capsys):
    d, A, B = files
    code = main(["pairwise", str(d / "a.npy"), str(d / "b.npy"), "--measure", "cca",
                 "--chunk-size", "1000000000000"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    want = svcca.cca(A, B).score
    assert float(out.splitlines()[1].split(",")[2]) == pytest.approx(want, abs=1e-12)
    # the library itself: chunk rows = min(chunk_size, n) in every path that allocates
    got = svcca.pairwise({"a": A, "b": B}, measure="cca", chunk_size=10**12)
    assert got["a", "b"] == pytest.approx(want, abs=1e-12)
    m = svcca.Moments.from_arrays(A, B, chunk_size=10**12)
    assert m.n == A.shape[0]
    assert svcca.svcca_two_pass(A, B, keep=3, chunk_size=10**12).score == pytest.approx(
        svcca.svcca(A, B, keep=3).score, abs=1e-9
    )


# ---------------------------------------------------------------------- out of memory
def _overcommits() -> bool:
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            return f.read().strip() == "1"
    except OSError:  # not Linux: allocations beyond memory fail
        return False


@pytest.mark.skipif(_overcommits(), reason="vm.overcommit_memory=1 grants any allocation")
def test_out_of_memory_is_one_line_naming_what_lowers_it(tmp_path):
    """Real allocations beyond any machine's memory (2.9 TB n x n Grams; a 1.3 TB
    cross-product block), refused by the OS: one line, status 2, the options to change."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "long.npy", rng.standard_normal((600_000, 1)))
    r = run("compare", str(tmp_path / "long.npy"), str(tmp_path / "long.npy"),
            "--measure", "cka_rbf")  # fmt: skip
    assert r.returncode == 2, r.stderr
    one_error_line(r.stderr, "svcca compare: error: out of memory (")
    assert "run svcca pairwise A.npy B.npy with --chunk-size ROWS" in r.stderr
    wide = rng.standard_normal((3, 400_000))
    np.save(tmp_path / "w1.npy", wide)
    np.save(tmp_path / "w2.npy", wide[::-1])
    r = run("pairwise", str(tmp_path / "w1.npy"), str(tmp_path / "w2.npy"), "--measure", "cca")
    assert r.returncode == 2, r.stderr
    one_error_line(r.stderr, "svcca pairwise: error: out of memory (")
    assert "Lower --chunk-size" in r.stderr and "--sketch-size" in r.stderr


# ---------------------------------------------------------------------- keep
def test_keep_asking_for_more_than_the_features_is_refused_like_keep_1(files, capsys):
    d, A, B = files
    code = main(["compare", str(d / "a.npy"), str(d / "b.npy"), "--keep", "50"])
    _, err = capsys.readouterr()
    assert code == 2
    one_error_line(err, "keep=50 asks for more directions than representation X has features (6)")
    code = main(["pairwise", str(d / "a.npy"), str(d / "b.npy"), "--keep", "5"])
    _, err = capsys.readouterr()
    assert code == 2
    one_error_line(err, "keep=5 asks for more directions than representation 'b' has features")
    with pytest.raises(ValueError, match=r"Pass a count <= 4, a fraction such as 0.99"):
        svcca.svcca(A, B, keep=5)
    with pytest.raises(ValueError, match=r"keep must be a number in \(0, 1\); got 1.0"):
        svcca.svcca(A, B, keep=1.0)
    # the Fourier path counts the flattened layer on the compared grid: 4 x 4 x 2
    maps = np.random.default_rng(5).standard_normal((40, 4, 4, 2))
    with pytest.raises(
        ValueError,
        match=r"keep=33 asks for more directions than representation A has features \(32\)",
    ):
        svcca.conv.fourier_cca(maps, maps, layout="nhwc", keep=33)


def test_keep_above_the_rank_keeps_every_direction_with_a_warning(files):
    _, A, B = files
    dead = np.hstack([A[:, :4], np.zeros((A.shape[0], 2))])  # 6 features, 4 with variance
    with pytest.warns(
        svcca.SVCCAWarning,
        match=r"keep=6 asks for more directions than representation X has with non-zero "
        r"variance \(4\): all 4 are kept",
    ):
        r = svcca.svcca(dead, A, keep=6)
    assert r.kept_x == 4
