"""Losses and metrics against references and hand-computed numbers."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from gwtwin.errors import GwtwinError
from gwtwin.train.losses import asd_ratio, cosine_warmup, qimage_loss, ssim, whitened_mse
from gwtwin.train.metrics import excess_power_metrics, veto_accuracy, veto_flags, window_power


def test_whitened_mse_is_residual_snr2_per_sample():
    t = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert float(whitened_mse(t * 0.5, t)) == pytest.approx((0.25 + 1 + 2.25 + 4) / 4)
    with pytest.raises(GwtwinError, match=r"shapes differ: \(1, 4\) vs \(1, 3\)"):
        whitened_mse(t, t[:, :3])


def test_asd_ratio_exact_cases():
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(4, 2048, generator=gen, dtype=torch.float64)
    assert float(asd_ratio(torch.zeros_like(target), target, 256.0)) == pytest.approx(1.0)
    assert float(asd_ratio(0.5 * target, target, 256.0)) == pytest.approx(0.5)
    assert float(asd_ratio(target, target, 256.0)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(GwtwinError, match="asd_fftlength must give 4 .. 2048 samples"):
        asd_ratio(target, target, 256.0, fftlength=100.0)
    with pytest.raises(GwtwinError, match=r"asd_band \(200.0, 300.0\) Hz holds no frequency"):
        asd_ratio(target, target, 256.0, band=(200.0, 300.0))


def _ssim_reference(x, y, data_range):
    """Wang et al.'s SSIM with scipy's Gaussian filter (sigma 1.5, radius 5 = 11 taps), on the
    pixels where the 11 x 11 window fits (what the valid convolution computes)."""
    f = lambda z: ndimage.gaussian_filter(z, 1.5, truncate=5 / 1.5, mode="constant")  # noqa: E731
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s[5:-5, 5:-5].mean()


def test_ssim_matches_reference():
    rng = np.random.default_rng(3)
    x = rng.random((16, 40))
    y = x + 0.3 * rng.random((16, 40))
    ref = _ssim_reference(x, y, float(y.max() - y.min()))
    got = float(ssim(torch.from_numpy(x)[None], torch.from_numpy(y)[None]))
    assert got == pytest.approx(ref, rel=1e-10)  # float64, same sums in another order
    assert float(ssim(torch.from_numpy(y)[None], torch.from_numpy(y)[None])) == pytest.approx(1.0)
    with pytest.raises(GwtwinError, match="at least 11 pixels"):
        ssim(torch.rand(1, 8, 8), torch.rand(1, 8, 8))


def test_qimage_loss_weights():
    a = torch.rand(2, 16, 16)
    assert float(qimage_loss(a, a)) == pytest.approx(0.0, abs=1e-6)
    b = a + 1.0
    assert float(qimage_loss(b, a, 1.0, 0.0)) == pytest.approx(1.0)


def test_cosine_warmup_schedule():
    assert cosine_warmup(0, 10, 1, 0.0) == pytest.approx(0.5)
    assert cosine_warmup(1, 10, 1, 0.0) == pytest.approx(1.0)
    assert cosine_warmup(10, 10, 1, 0.1) == pytest.approx(0.1)


def test_excess_power_metrics_by_hand():
    truth = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]])
    pred = torch.tensor([[3.0, 2.0], [0.0, 0.0], [1.0, 0.0]])
    err, power = window_power(truth, pred)
    assert err.tolist() == [4.0, 1.0, 1.0] and power.tolist() == [25.0, 1.0, 0.0]
    m = excess_power_metrics(err, power, [True, True, False])
    assert m["removed"] == pytest.approx(1 - 6 / 26)
    assert m["removed_glitch"] == pytest.approx(1 - 5 / 26)
    assert m["removed_glitch_median"] == pytest.approx(np.median([1 - 4 / 25, 0.0]))
    assert m["residual_snr_median"] == pytest.approx(np.median([2.0, 1.0]))
    assert m["truth_snr_median"] == pytest.approx(np.median([5.0, 1.0]))
    assert (m["n_windows"], m["n_glitch"]) == (3, 2)
    with pytest.raises(GwtwinError, match="truth and prediction shapes differ"):
        window_power(truth, pred[:2])


def test_veto_rule_needs_two_connected_pixels():
    img = np.zeros((4, 8, 8))
    img[1, 3, 3] = 30  # one lonely pixel: no veto
    img[2, 3, 3] = img[2, 4, 4] = 30  # diagonal neighbours: one cluster of 2
    img[3, 1, 1] = img[3, 5, 5] = 30  # two separate pixels: no cluster of 2
    assert veto_flags(img, 16).tolist() == [False, False, True, False]
    assert veto_flags(img, 40).tolist() == [False] * 4
    real = img.copy()
    real[1, 3, 4] = 30  # the real image has a cluster where the prediction has one pixel
    acc = veto_accuracy(img, real, [16, 40])
    assert acc == {16.0: 0.75, 40.0: 1.0}
    with pytest.raises(GwtwinError, match=r"expected images \[N, F, T\], found shape \(8, 8\)"):
        veto_flags(img[0], 1)
