"""The streaming engine against offline cleaning: same output, any feeding, resumable.

The bound: every block's window is conditioned (float64) from data that reach at least the
conditioning edge beyond it on both sides, so online and offline windows differ by float64
rounding; the network runs in float64 (``GridPredictor.precision``), whose CPU kernels agree to
rounding whatever the batch shape and thread count (float32's do not: 1e-6 relative); colouring
is a local float64 FFT filter.  Each step adds ~ eps64 * log2(N) relative error, so online ==
offline is asserted to 1e-12 * max|prediction| (measured: ~1e-15).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gwtwin.data import read
from gwtwin.errors import GwtwinError
from gwtwin.infer.clean import clean_frames, load_clean_config
from gwtwin.signal.conditioning import condition_witnesses
from gwtwin.stream.engine import StreamEngine

from .conftest import DURATION, START, STRAIN

BOUND = 1e-12


@pytest.fixture(scope="module")
def offline(stream_scenario, tmp_path_factory):
    src, twin = stream_scenario
    out = tmp_path_factory.mktemp("stream-offline")
    cfg = load_clean_config({"images": 0, "tensorboard": False, "attribute": False})
    summary = clean_frames(src / "frames", out, cfg, model=twin, log=str)
    names = [summary["cleaned_channel"], summary["prediction_channel"]]
    return read(out / "frames", names).block


@pytest.fixture(scope="module")
def raw(stream_scenario):
    src, twin = stream_scenario
    strain = read(src / "frames", [STRAIN]).block.data[0].numpy()
    witnesses = {c: read(src / "frames", [c]).block.data[0].numpy() for c in twin.channels}
    return strain, witnesses


def _stream(twin, raw, steps, *, start=START, end=START + DURATION, emit_from=None, **kw):
    """Feed ``[start, end)`` in pieces of the given durations (cycled); all increments."""
    strain, witnesses = raw
    engine = StreamEngine(twin, **kw)
    engine.start_segment(start, emit_from=emit_from)
    rates = {c: engine.rates[c] for c in twin.channels}
    out, t, i = [], start, 0
    while t < end:
        b = min(t + steps[i % len(steps)], end)
        i += 1
        a0, b0 = t - START, b - START
        engine.feed(
            t,
            b,
            strain[a0 * engine.strain_rate : b0 * engine.strain_rate],
            {c: witnesses[c][a0 * r : b0 * r] for c, r in rates.items()},
        )
        out += engine.ready()
        t = b
    out += engine.close_segment()
    return engine, out


def _joined(increments):
    pred = torch.cat([i.prediction.data[0] for i in increments]).numpy()
    cleaned = torch.cat([i.cleaned().data[0] for i in increments]).numpy()
    return cleaned, pred


@pytest.mark.parametrize("steps", [[1], [3], [7, 1, 2]])
def test_online_equals_offline(stream_scenario, raw, offline, steps):
    _, twin = stream_scenario
    _, incs = _stream(twin, raw, steps)
    assert [i.start for i in incs] == list(range(START, START + DURATION))
    cleaned, pred = _joined(incs)
    ref_cleaned, ref_pred = offline.data[0].numpy(), offline.data[1].numpy()
    scale = np.abs(ref_pred).max()
    assert scale > 0
    np.testing.assert_allclose(pred, ref_pred, rtol=0, atol=BOUND * scale)
    np.testing.assert_allclose(cleaned, ref_cleaned, rtol=0, atol=BOUND * scale)
    assert any(i.applied for i in incs) and not any(i.provisional for i in incs)


def test_unaligned_start_equals_offline_of_the_same_span(stream_scenario, raw, tmp_path):
    src, twin = stream_scenario
    a, b = START + 3, START + DURATION - 5  # not on the 2 s block grid, odd length
    cfg = load_clean_config(
        {"images": 0, "tensorboard": False, "attribute": False, "start": a, "end": b}
    )
    summary = clean_frames(src / "frames", tmp_path, cfg, model=twin, log=str)
    ref = read(tmp_path / "frames", [summary["prediction_channel"]]).block.data[0].numpy()
    _, incs = _stream(twin, raw, [1], start=a, end=b)
    _, pred = _joined(incs)
    np.testing.assert_allclose(pred, ref, rtol=0, atol=BOUND * np.abs(ref).max())


def test_resume_from_a_later_second_gives_the_same_output(stream_scenario, raw):
    _, twin = stream_scenario
    _, full = _stream(twin, raw, [1])
    engine = StreamEngine(twin)
    resume = START + 50
    first = resume - engine.context_seconds - 1  # what the service re-derives from
    _, part = _stream(twin, raw, [1], start=first, emit_from=resume)
    assert [i.start for i in part] == list(range(resume, START + DURATION))
    ref = _joined(full[resume - START :])[1]
    np.testing.assert_allclose(_joined(part)[1], ref, rtol=0, atol=BOUND * np.abs(ref).max())


def test_emission_never_waits_beyond_the_look_ahead(stream_scenario, raw):
    _, twin = stream_scenario
    strain, witnesses = raw
    engine = StreamEngine(twin)
    engine.start_segment(START)
    emitted_at = {}
    for s in range(START, START + 60):
        i = s - START
        engine.feed(
            s,
            s + 1,
            strain[i * engine.strain_rate : (i + 1) * engine.strain_rate],
            {c: w[i * engine.rates[c] : (i + 1) * engine.rates[c]] for c, w in witnesses.items()},
        )
        for inc in engine.ready():
            emitted_at[inc.start] = s + 1
    waits = [emitted_at[s] - (s + 1) for s in sorted(emitted_at)]
    assert max(waits) <= engine.context_seconds
    assert min(waits) >= 0 and len(emitted_at) >= 60 - engine.context_seconds


def test_ramps_through_the_streaming_conditioning(stream_scenario):
    """Linear ramps: raw strain comes out sample for sample, and every block's window equals
    the offline conditioning of the whole ramp (float32, to one rounding)."""
    _, twin = stream_scenario
    engine = StreamEngine(twin)
    n = 64
    strain = np.arange(n * engine.strain_rate, dtype=np.float64)
    ramps = {c: np.arange(n * r, dtype=np.float64) / r for c, r in engine.rates.items()}
    engine.start_segment(START)
    incs = []
    for s in range(n):
        sl = {c: v[s * engine.rates[c] : (s + 1) * engine.rates[c]] for c, v in ramps.items()}
        engine.feed(
            START + s, START + s + 1, strain[s * engine.strain_rate :][: engine.strain_rate], sl
        )
        incs += engine.ready()
        if s == n - 1:
            checked = sorted(engine.blocks)
            windows = {k: engine._window(k, False) for k in checked}
    incs += engine.close_segment()
    raw = torch.cat([i.raw.data[0] for i in incs]).numpy()
    np.testing.assert_array_equal(raw, strain)
    from gwtwin.data import Block

    blocks = [
        Block(
            torch.as_tensor(ramps[w.name])[None], START * 10**9, w.sample_rate, (w.name,), (w.unit,)
        )
        for w in twin.spec.witnesses
    ]
    x = condition_witnesses(blocks, twin.spec)
    rate = engine.rate
    for k, win in windows.items():
        lo = k * engine.hop - engine.margin - START * rate
        ref = x[:, lo : lo + win.shape[-1]]
        np.testing.assert_allclose(
            win.numpy(), ref.numpy(), rtol=2e-7, atol=2e-7 * float(ref.abs().max())
        )
    assert checked


def test_bad_witness_switches_its_blocks_off(stream_scenario, raw, offline):
    _, twin = stream_scenario
    strain, witnesses = raw
    bad = dict(witnesses)
    channel = twin.channels[1]
    rate = StreamEngine(twin).rates[channel]
    bad[channel] = witnesses[channel].copy()
    bad[channel][40 * rate : 41 * rate] = np.nan
    _, incs = _stream(twin, (strain, bad), [1])
    by = {i.start: i for i in incs}
    assert by[START + 40].witness_bad == [(START + 40.0, START + 41.0)]
    assert not by[START + 40].applied and not by[START + 39].witness_bad
    # far from the bad second the output is the offline one
    ref = offline.data[1].numpy()
    far = by[START + 70].prediction.data[0].numpy()
    rr = ref[70 * len(far) : 71 * len(far)]
    np.testing.assert_allclose(far, rr, rtol=0, atol=BOUND * np.abs(ref).max())


def test_low_latency_mode(stream_scenario, raw, offline):
    _, twin = stream_scenario
    engine, incs = _stream(twin, raw, [1], lookahead=2)
    assert engine.latency_seconds == 2
    assert [i.start for i in incs] == list(range(START, START + DURATION))
    assert any(i.provisional for i in incs)
    _, pred = _joined(incs)
    ref = offline.data[1].numpy()
    assert np.isfinite(pred).all()
    # provisional seconds differ from offline, but the prediction stays of the same size
    assert 0 < np.abs(pred - ref).max() and np.std(pred) < 3 * np.std(ref)


def test_errors_name_what_was_expected(stream_scenario, raw):
    _, twin = stream_scenario
    strain, witnesses = raw
    engine = StreamEngine(twin)
    with pytest.raises(GwtwinError, match="no open segment"):
        engine.feed(START, START + 1, strain[:1], {})
    engine.start_segment(START)
    with pytest.raises(GwtwinError, match="a segment is open"):
        engine.start_segment(START + 5)
    one = {c: w[: engine.rates[c]] for c, w in witnesses.items()}
    with pytest.raises(GwtwinError, match="expected GPS"):
        engine.feed(START + 1, START + 2, strain[: engine.strain_rate], one)
    with pytest.raises(GwtwinError, match=r"expected \d+ samples"):
        engine.feed(START, START + 1, strain[:10], one)
    with pytest.raises(GwtwinError, match="lookahead must be in"):
        StreamEngine(twin, lookahead=engine.context_seconds)
    with pytest.raises(GwtwinError, match="before the segment start"):
        StreamEngine(twin).start_segment(START, emit_from=START - 1)
