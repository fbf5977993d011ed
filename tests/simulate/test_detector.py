"""Detector styles: a LIGO-like and a Virgo-like simulated detector from one ``detector`` key.

The LIGO-like tiny scenario (configs/simulate-ligo-tiny.yaml) is rendered once and checked for
what makes it LIGO-like in the files: H- file names and H1: channels, 60 Hz mains in the mains
monitor and in strain, the aLIGO noise curve, and the configured units (none where configured).
"""

import re
from pathlib import Path

import lal
import lalsimulation
import numpy as np
import pytest
from astropy import units as u
from gwpy.timeseries import TimeSeries, TimeSeriesDict
from pydantic import ValidationError
from scipy.signal import welch
from scipy.signal.windows import tukey

from gwtwin.errors import ConfigError
from gwtwin.simulate import SimulationConfig, Simulator, design_psd, load_config, read_catalogue
from gwtwin.simulate.config import StrainConfig
from gwtwin.simulate.styles import STYLES, virgo_strain_channel

CONFIGS = Path(__file__).parents[2] / "configs"
LIGO_TINY = CONFIGS / "simulate-ligo-tiny.yaml"


def _names(config: SimulationConfig) -> list[str]:
    """Every auxiliary channel name of a scenario, without the prefix."""
    return [
        config.scatter.witness,
        config.scatter.redundant_witness,
        config.em.witness,
        config.powerline.mains_channel,
        config.powerline.control_channel,
        *(d.name for d in config.decoys.channels),
    ]


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _get(model, dotted: str):
    for part in dotted.split("."):
        model = getattr(model, part)
    if isinstance(model, list):
        return [m.model_dump() if hasattr(m, "model_dump") else m for m in model]
    return model


# -- the config ------------------------------------------------------------------------------------
def test_virgo_style_is_the_field_defaults():
    """``SimulationConfig()`` is the Virgo style, and the style table agrees with the defaults of
    the fields (so a sub-model built alone, ``StrainConfig()``, is Virgo-like too)."""
    assert SimulationConfig().detector == "virgo"
    fields = SimulationConfig.model_construct()  # field defaults, no validators
    for key, value in _flatten(STYLES["virgo"]).items():
        assert _get(fields, key) == value, key
    assert StrainConfig().channel == virgo_strain_channel(4096.0) == "Hrec_hoft_4096Hz"


def test_ligo_style_sets_consistent_defaults():
    c = SimulationConfig(detector="ligo")
    assert (c.prefix, c.observatory) == ("H1", "H")
    assert c.channel(c.strain.channel) == "H1:GDS-CALIB_STRAIN"
    assert c.strain.design_curve == "aligo" and c.strain.sample_rate == 4096
    assert (c.powerline.mains_frequency, c.powerline.mains_amplitude) == (60.0, 170.0)
    assert c.em.witness == "PEM-CS_MAG_LVEA_VERTEX_X_DQ"
    assert c.powerline.mains_channel == "PEM-CS_MAINSMON_EBAY_1_DQ"
    assert c.powerline.control_channel == "ASC-DHARD_P_OUT_DQ" and c.powerline.control_unit == ""
    assert c.scatter.witness == "SUS-ETMX_L2_WIT_L_DQ"
    # no calibration line near a 60 Hz mains harmonic (the Virgo set has one at 61.3 Hz)
    assert all(
        abs(line.frequency / 60 - round(line.frequency / 60)) > 0.05 for line in c.strain.lines
    )
    # LIGO names: SUBSYSTEM-REST with a hyphen; Virgo names: underscores only
    ligo, virgo = _names(c), _names(SimulationConfig())
    assert len(ligo) == len(virgo) == 25 and len(set(ligo)) == 25
    assert all(re.fullmatch(r"(PEM|SUS|ASC|LSC)-[A-Z0-9_]+", n) for n in ligo), ligo
    assert all(re.fullmatch(r"[A-Z0-9_]+", n) for n in virgo), virgo
    # everything else is the same scenario
    same = {"duration", "frame_length", "seed", "scatter.rate", "em.rate", "em.coupling"}
    for key in same:
        assert _get(c, key) == _get(SimulationConfig(), key), key


def test_user_keys_beat_the_style():
    c = load_config(
        LIGO_TINY,
        {
            "prefix": "L1",
            "strain": {"design_curve": "advirgo", "lines": []},
            "powerline": {"mains_frequency": 50.0},
            "em": {"witness": "PEM-EX_MAG_EBAY_SEIRACK_X_DQ"},
        },
    )
    assert c.prefix == "L1" and c.observatory == "L"
    assert c.strain.design_curve == "advirgo" and c.strain.lines == []
    assert c.powerline.mains_frequency == 50.0 and c.em.witness == "PEM-EX_MAG_EBAY_SEIRACK_X_DQ"
    # keys the user did not give still come from the style
    assert c.strain.channel == "GDS-CALIB_STRAIN" and c.powerline.mains_amplitude == 170.0
    assert c.powerline.mains_channel == "PEM-CS_MAINSMON_EBAY_1_DQ"
    assert [d.name for d in c.decoys.channels][-1] == "LSC-PRCL_OUT_DQ"  # the file's own list
    # Virgo's strain name follows the rate unless given; a sub-model instance counts its set keys
    assert SimulationConfig(strain={"sample_rate": 16384}).strain.channel == "Hrec_hoft_16384Hz"
    given = SimulationConfig(strain={"sample_rate": 16384, "channel": "Hrec_hoft_4096Hz"})
    assert given.strain.channel == "Hrec_hoft_4096Hz"
    built = SimulationConfig(detector="ligo", strain=StrainConfig(sample_rate=16384))
    assert (built.strain.channel, built.strain.sample_rate) == ("GDS-CALIB_STRAIN", 16384)


def test_bad_detector_names_key_value_and_allowed_values():
    with pytest.raises(ConfigError, match=r"detector: .*'virgo' or 'ligo'.*found: 'kagra'"):
        load_config(None, {"detector": "kagra"})
    with pytest.raises(ConfigError, match=r"detector: .*'virgo' or 'ligo'.*found: \['ligo'\]"):
        load_config(None, {"detector": ["ligo"]})


def test_detector_cannot_change_after_construction():
    config = SimulationConfig()
    with pytest.raises(ValidationError, match=r"detector\n.*frozen"):
        config.detector = "ligo"
    config.duration = 128  # other keys still validate on assignment, and keep the style's keys
    assert config.strain.channel == "Hrec_hoft_4096Hz"


def test_ligo_yaml_is_the_ligo_style_and_dumps_round_trip(tmp_path):
    config = load_config(CONFIGS / "simulate-ligo.yaml")
    assert config == SimulationConfig(detector="ligo")
    path = tmp_path / "echo.yaml"
    path.write_text(load_config(LIGO_TINY).dump())
    assert load_config(path) == load_config(LIGO_TINY)


# -- what the LIGO-like scenario writes ----------------------------------------------------------
@pytest.fixture(scope="module")
def ligo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim-ligo")
    sim = Simulator(load_config(LIGO_TINY))
    return sim, sim.run(out, workers=2, progress=False)


def test_ligo_files_and_channel_names(ligo_run):
    sim, result = ligo_run
    c = sim.config
    assert [p.name for p in result.frames] == [
        f"H-GWTWIN-{c.start + 32 * k}-32.gwf" for k in range(2)
    ]
    assert [p.name for p in result.truth_frames] == [
        f"H-GWTWIN_TRUTH-{c.start + 32 * k}-32.gwf" for k in range(2)
    ]
    specs = [s for s in result.channels if s.role != "truth"]
    got = TimeSeriesDict.read(str(result.frames[0]), [s.name for s in specs])
    assert {n: s.sample_rate.value for n, s in got.items()} == {s.name: s.rate for s in specs}
    assert all(name.startswith("H1:") for name in got)
    assert "H1:GDS-CALIB_STRAIN" in got and "H1:PEM-CS_MAG_LVEA_VERTEX_X_DQ" in got
    truth = [s.name for s in result.channels if s.role == "truth"]
    assert all(n.startswith("H1:TRUTH_") for n in truth)
    TimeSeriesDict.read(str(result.truth_frames[0]), truth)  # all there
    table = read_catalogue(result.catalogue)
    families = [str(f) for f in table["family"]]  # (the HDF5 column holds bytes)
    witnessed = table[[f in ("scatter", "em", "powerline", "decoy") for f in families]]
    assert len(witnessed) > 0 and all(str(ch).startswith("H1:") for ch in witnessed["channel"])


def _read(result, channel):
    files = [str(p) for p in result.frames]
    return TimeSeries.read(files, channel)


def test_ligo_mains_is_60_hz_in_the_monitor_and_in_strain(ligo_run):
    sim, result = ligo_run
    c = sim.config
    mains = _read(result, c.channel(c.powerline.mains_channel))
    f, p = welch(mains.value, fs=mains.sample_rate.value, nperseg=int(4 * c.powerline.mains_rate))
    assert f[np.argmax(p)] == pytest.approx(60.0, abs=0.25)
    fs = c.strain.sample_rate
    strain = _read(result, c.channel(c.strain.channel))
    f, p = welch(strain.value, fs=fs, nperseg=int(4 * fs), average="median")

    def peak(freq):  # the highest bin within 0.5 Hz of freq, over the noise within 10 Hz
        return p[np.abs(f - freq) <= 0.5].max() / np.median(p[np.abs(f - freq) <= 10])

    # the coupled mains line (1.5e-22 strain) is ~30x the aLIGO noise ASD at 60 Hz: ~1e3 in PSD;
    # noise alone: the largest of 5 bins over the median, rarely above 2
    assert peak(60.0) > 100
    assert peak(50.0) < 3 and peak(150.0) < 3
    # the noise-free power-line truth: the odd harmonics at 180 and 300 Hz with the configured
    # relative amplitudes (4 %, 2 %), nothing at the 50 Hz harmonics (episode sidebands reach
    # 60 - 9 Hz: their leakage at 50 Hz is ~3e-7)
    truth = TimeSeries.read([str(p) for p in result.truth_frames], "H1:TRUTH_POWERLINE")
    f, p = welch(truth.value.astype(np.float64), fs=fs, nperseg=int(4 * fs))
    line = {k: p[np.abs(f - k) <= 0.5].max() for k in (50, 60, 150, 180, 250, 300)}
    for k, rel in zip((180, 300), c.powerline.harmonics, strict=True):
        assert line[k] / line[60] == pytest.approx(rel**2, rel=0.1), k
    assert max(line[50], line[150], line[250]) < 1e-5 * line[60]


def test_ligo_noise_follows_the_aligo_curve(ligo_run):
    sim, result = ligo_run
    c = sim.config
    strain = _read(result, c.channel(c.strain.channel)).value
    truth = sum(
        TimeSeries.read([str(p) for p in result.truth_frames], s.name).value.astype(np.float64)
        for s in sim.truth_specs()
    )
    assert truth.shape == strain.shape
    fs = c.strain.sample_rate
    f, p = welch(strain - truth, fs=fs, nperseg=int(4 * fs), average="median")
    band = (f > 30) & (f < 1000)
    # 31 half-overlapping segments: each bin's ASD scatters by ~10 %; the mean over ~3900 bins
    # is good to well under 1 %, so 3 % leaves room for the median's residual bias
    assert np.sqrt(p[band] / design_psd(f[band], "aligo")).mean() == pytest.approx(1, abs=0.03)
    assert abs(np.sqrt(p[band] / design_psd(f[band], "advirgo")).mean() - 1) > 0.1


def _lal_aligo_snr(result, channel, start, end, fs):
    """SNR of a truth glitch from the truth frames against LALSimulation's aLIGO curve."""
    pad = 1.0
    files = sorted(str(p) for p in result.truth_frames)
    ts = TimeSeries.read(files, channel, start=np.floor(start - pad), end=np.ceil(end + pad))
    h = ts.value.astype(np.float64) * tukey(ts.size, alpha=2 * pad / ts.duration.value)
    hf = np.fft.rfft(h) / fs
    df = fs / h.size
    series = lal.CreateREAL8FrequencySeries("psd", 0, 0.0, df, lal.DimensionlessUnit, hf.size)
    lalsimulation.SimNoisePSDaLIGODesignSensitivityT1800044(series, 9.0)
    psd = np.array(series.data.data)
    freqs = np.arange(hf.size) * df
    band = (freqs >= 10.0) & (psd > 0)
    return float(np.sqrt(4 * np.sum(np.abs(hf[band]) ** 2 / psd[band]) * df))


def test_ligo_catalogue_snrs_are_against_aligo(ligo_run):
    sim, result = ligo_run
    table = read_catalogue(result.catalogue)
    rows = [r for r in table if r["family"] in ("blip", "em")][:4]
    assert len(rows) >= 2
    for row in rows:
        got = _lal_aligo_snr(
            result,
            f"H1:TRUTH_{str(row['family']).upper()}",
            float(row["gps_start"]),
            float(row["gps_end"]),
            sim.config.strain.sample_rate,
        )
        assert got == pytest.approx(float(row["snr"]), rel=0.05), row["id"]


def test_ligo_units_as_configured(ligo_run, tmp_path):
    """Each channel's configured unit is its unit in the frames (GWF keeps it as the LAL SI
    equivalent, ``T`` -> ``kg / (A s2)``, equal as an astropy unit); "" reads back dimensionless."""
    sim, result = ligo_run
    specs = [s for s in result.channels if s.role != "truth"]
    units = {s.name: s.unit for s in specs}
    assert units["H1:ASC-DHARD_P_OUT_DQ"] == "" and units["H1:LSC-PRCL_OUT_DQ"] == ""
    assert units["H1:PEM-CS_MAG_LVEA_VERTEX_X_DQ"] == "T"
    assert units["H1:PEM-CS_MAINSMON_EBAY_1_DQ"] == "V"
    got = TimeSeriesDict.read(str(result.frames[0]), list(units))
    for name, unit in units.items():
        expected = u.Unit(unit) if unit else u.dimensionless_unscaled
        assert got[name].unit == expected, (name, got[name].unit, unit)
    # a scenario can drop the unit of any witness; HDF5 keeps the unit strings themselves
    config = load_config(
        LIGO_TINY, {"format": "hdf5", "em": {"witness_unit": ""}, "powerline": {"mains_unit": ""}}
    )
    data_path, _, _ = Simulator(config).write_frame_files(tmp_path, 0)
    got = TimeSeriesDict.read(str(data_path), list(units), format="hdf5")
    assert got["H1:PEM-CS_MAG_LVEA_VERTEX_X_DQ"].unit == u.dimensionless_unscaled
    assert got["H1:PEM-CS_MAINSMON_EBAY_1_DQ"].unit == u.dimensionless_unscaled
    assert got["H1:SUS-ETMX_L2_WIT_L_DQ"].unit == u.um
    assert got["H1:ASC-DHARD_P_OUT_DQ"].unit == u.dimensionless_unscaled


def test_ligo_strain_is_noise_plus_truth_exactly(ligo_run):
    sim, _ = ligo_run
    for index in range(sim.n_frames):
        blocks, _ = sim.render_frame(index)
        truth = sim.render_truth(index)
        assert {f for f, x in truth.items() if np.any(x)} >= {"scatter", "em", "powerline", "lines"}
        noise = sim._noise[blocks[0].channels[0]].frame(index)
        np.testing.assert_allclose(
            blocks[0].numpy()[0] - sum(truth.values()), noise, rtol=0, atol=1e-30
        )


def test_ligo_quicklook(ligo_run, tmp_path):
    from gwtwin.simulate.quicklook import quicklook

    _, result = ligo_run
    png = quicklook(result.output, tmp_path / "ql.png")
    assert png.stat().st_size > 20_000


def test_strain_at_16384_hz(only):
    """LIGO's real strain rate: the aLIGO curve holds up to 7 kHz, and Virgo's name follows."""
    config = only(
        "blip", detector="ligo", duration=32, frame_length=32, strain={"sample_rate": 16384}
    )
    sim = Simulator(config)
    blocks, truth = sim.render_frame(0)
    assert blocks[0].channels[0] == "H1:GDS-CALIB_STRAIN" and blocks[0].sample_rate == 16384
    assert truth.sample_rate == 16384
    noise = blocks[0].numpy()[0] - sum(sim.render_truth(0).values())
    f, p = welch(noise, fs=16384, nperseg=4 * 16384, average="median")
    for lo, hi in [(30, 1000), (2000, 7000)]:
        band = (f > lo) & (f < hi)
        ratio = np.sqrt(p[band] / design_psd(f[band], "aligo")).mean()
        assert ratio == pytest.approx(1, abs=0.03), (lo, hi)
    virgo = only(None, duration=32, frame_length=32, strain={"sample_rate": 16384})
    assert Simulator(virgo).channels[0].name == "V1:Hrec_hoft_16384Hz"
