"""Detector styles: the defaults that make a simulated detector Virgo-like or LIGO-like.

``SimulationConfig.detector`` names a style; the style fills the keys below that the user's config
does not set (explicit keys always win), so one switch gives consistent names, mains frequency
and noise curve:

=========================  ====================================  =================================
key                        ``virgo`` (the built-in default)      ``ligo``
=========================  ====================================  =================================
``prefix``                 ``V1``                                ``H1`` (``L1`` via ``prefix``)
``strain.channel``         ``Hrec_hoft_<rate>Hz``                ``GDS-CALIB_STRAIN``
``strain.design_curve``    ``advirgo`` (AdV, P1200087)           ``aligo`` (aLIGO, T1800044)
``strain.lines``           calibration 36.5, 61.3, 1083.7 Hz;    calibration 17.1, 410.3, 1083.7
                           violin 445.2 Hz                       Hz; violin 505.8 Hz
``powerline``              50 Hz mains, 325 V peak (230 V rms)   60 Hz mains, 170 V peak (120 V)
witnesses and decoys       Virgo names (``ENV_CEB_MAG_N``)       LIGO names (``PEM-CS_MAG_...``)
=========================  ====================================  =================================

Virgo's strain channel carries its sample rate in its name (``Hrec_hoft_4096Hz``,
``Hrec_hoft_16384Hz``), so the style derives it from ``strain.sample_rate``.  The strain sample
rate itself is not a style key: it is 4096 Hz for both (real LIGO strain is 16384 Hz; set
``strain.sample_rate`` for that, at four times the cost).

The field defaults of the config models are the Virgo style (``SimulationConfig()`` is the
Virgo-like demo); a test checks that the table below agrees with them.
"""

from __future__ import annotations

import copy

from pydantic import BaseModel

#: decoy channels: (name, rate Hz, unit, noise ASD at 1 Hz in unit/sqrt(Hz), ASD slope above 1 Hz)
VIRGO_DECOYS = [
    ("ENV_CEB_MAG_E", 4096, "T", 1e-12, 0.0),
    ("ENV_CEB_MAG_V", 4096, "T", 1e-12, 0.0),
    ("ENV_NEB_MAG_N", 2048, "T", 2e-12, 0.0),
    ("ENV_MCB_MAG_N", 1024, "T", 2e-12, 0.0),
    ("ENV_CEB_SEIS_N", 256, "um/s", 0.05, 1.0),
    ("ENV_CEB_SEIS_E", 256, "um/s", 0.05, 1.0),
    ("ENV_CEB_SEIS_V", 256, "um/s", 0.05, 1.0),
    ("ENV_NEB_SEIS_V", 256, "um/s", 0.05, 1.0),
    ("ENV_WEB_SEIS_V", 256, "um/s", 0.05, 1.0),
    ("ENV_CEB_ACC_X", 1024, "m/s2", 1e-6, 0.5),
    ("ENV_CEB_ACC_Y", 1024, "m/s2", 1e-6, 0.5),
    ("ENV_EIB_ACC_Z", 1024, "m/s2", 1e-6, 0.5),
    ("ENV_CEB_MIC_1", 2048, "Pa", 1e-3, 0.5),
    ("ENV_DET_MIC_1", 2048, "Pa", 1e-3, 0.5),
    ("SBE_EIB_LC_TX", 256, "urad", 0.01, 1.0),
    ("SBE_EIB_LC_TY", 256, "urad", 0.01, 1.0),
    ("ASC_WE_TY_CORR", 128, "urad", 0.002, 0.0),
    ("ASC_BS_TX_CORR", 128, "urad", 0.002, 0.0),
    ("LSC_PRCL_CORR", 1024, "V", 1e-4, 0.0),
    ("ENV_CEB_UPS_VOLT_S", 1024, "V", 0.05, 0.0),
]

#: the same sensors in LIGO's convention (hyphen after the subsystem, ``_DQ`` for stored
#: channels); the control-loop channels (ASC, LSC) are in counts: no unit
LIGO_DECOYS = [
    ("PEM-CS_MAG_LVEA_VERTEX_Y_DQ", 4096, "T", 1e-12, 0.0),
    ("PEM-CS_MAG_LVEA_VERTEX_Z_DQ", 4096, "T", 1e-12, 0.0),
    ("PEM-EX_MAG_VEA_FLOOR_X_DQ", 2048, "T", 2e-12, 0.0),
    ("PEM-EY_MAG_VEA_FLOOR_X_DQ", 1024, "T", 2e-12, 0.0),
    ("PEM-CS_SEIS_LVEA_VERTEX_X_DQ", 256, "um/s", 0.05, 1.0),
    ("PEM-CS_SEIS_LVEA_VERTEX_Y_DQ", 256, "um/s", 0.05, 1.0),
    ("PEM-CS_SEIS_LVEA_VERTEX_Z_DQ", 256, "um/s", 0.05, 1.0),
    ("PEM-EX_SEIS_VEA_FLOOR_X_DQ", 256, "um/s", 0.05, 1.0),
    ("PEM-EY_SEIS_VEA_FLOOR_X_DQ", 256, "um/s", 0.05, 1.0),
    ("PEM-CS_ACC_PSL_TABLE1_X_DQ", 1024, "m/s2", 1e-6, 0.5),
    ("PEM-CS_ACC_PSL_TABLE1_Y_DQ", 1024, "m/s2", 1e-6, 0.5),
    ("PEM-CS_ACC_HAM6_OMC_Z_DQ", 1024, "m/s2", 1e-6, 0.5),
    ("PEM-CS_MIC_LVEA_VERTEX_DQ", 2048, "Pa", 1e-3, 0.5),
    ("PEM-CS_MIC_PSL_CENTER_DQ", 2048, "Pa", 1e-3, 0.5),
    ("SUS-ITMX_M0_DAMP_P_IN1_DQ", 256, "urad", 0.01, 1.0),
    ("SUS-ITMX_M0_DAMP_Y_IN1_DQ", 256, "urad", 0.01, 1.0),
    ("ASC-CHARD_Y_OUT_DQ", 128, "", 0.002, 0.0),
    ("ASC-DSOFT_P_OUT_DQ", 128, "", 0.002, 0.0),
    ("LSC-PRCL_OUT_DQ", 1024, "", 1e-4, 0.0),
    ("PEM-CS_MAINSMON_EBAY_2_DQ", 1024, "V", 0.05, 0.0),
]


def decoy_dicts(spec) -> list[dict]:
    """Decoy-channel mappings (the YAML form) from ``(name, rate, unit, asd, slope)`` rows."""
    keys = ("name", "rate", "unit", "noise_asd", "noise_slope")
    return [dict(zip(keys, (n, float(r), u, a, s), strict=True)) for n, r, u, a, s in spec]


#: what each style sets; ``strain.channel`` of Virgo is derived from the rate (see below)
STYLES: dict[str, dict] = {
    "virgo": {
        "prefix": "V1",
        "strain": {
            "design_curve": "advirgo",
            "lines": [
                {"frequency": 36.5, "amplitude": 4e-22, "name": "calibration"},
                {"frequency": 61.3, "amplitude": 2e-22, "name": "calibration"},
                {"frequency": 445.2, "amplitude": 6e-22, "name": "violin"},
                {"frequency": 1083.7, "amplitude": 1.5e-21, "name": "calibration"},
            ],
        },
        "scatter": {
            "witness": "SBE_SDB1_DISP_X",
            "witness_unit": "um",
            "redundant_witness": "SBE_SDB1_LVDT_X",
        },
        "em": {"witness": "ENV_CEB_MAG_N", "witness_unit": "T"},
        "powerline": {
            "mains_channel": "ENV_CEB_UPS_VOLT_R",
            "mains_unit": "V",
            "mains_frequency": 50.0,
            "mains_amplitude": 325.0,
            "control_channel": "ASC_NE_TX_CORR",
            "control_unit": "urad",
        },
        "decoys": {"channels": decoy_dicts(VIRGO_DECOYS)},
    },
    "ligo": {
        "prefix": "H1",
        "strain": {
            "channel": "GDS-CALIB_STRAIN",
            "design_curve": "aligo",
            # photon-calibrator lines and a violin mode; none near the 60 Hz mains harmonics
            "lines": [
                {"frequency": 17.1, "amplitude": 4e-22, "name": "calibration"},
                {"frequency": 410.3, "amplitude": 2e-22, "name": "calibration"},
                {"frequency": 505.8, "amplitude": 6e-22, "name": "violin"},
                {"frequency": 1083.7, "amplitude": 1.5e-21, "name": "calibration"},
            ],
        },
        "scatter": {
            # the test-mass suspension's penultimate stage and the top-mass OSEM (noisier)
            "witness": "SUS-ETMX_L2_WIT_L_DQ",
            "witness_unit": "um",
            "redundant_witness": "SUS-ETMX_M0_DAMP_L_IN1_DQ",
        },
        "em": {"witness": "PEM-CS_MAG_LVEA_VERTEX_X_DQ", "witness_unit": "T"},
        "powerline": {
            "mains_channel": "PEM-CS_MAINSMON_EBAY_1_DQ",
            "mains_unit": "V",
            "mains_frequency": 60.0,
            "mains_amplitude": 170.0,  # V peak: 120 V rms
            "control_channel": "ASC-DHARD_P_OUT_DQ",
            "control_unit": "",  # counts
        },
        "decoys": {"channels": decoy_dicts(LIGO_DECOYS)},
    },
}


def virgo_strain_channel(sample_rate) -> str:
    """Virgo's strain channel name at a sample rate (Hz): ``Hrec_hoft_4096Hz``."""
    rate = float(sample_rate)
    return f"Hrec_hoft_{int(rate) if rate.is_integer() else rate}Hz"


def style_defaults(detector: str, data: dict) -> dict:
    """The keys style ``detector`` sets, for a scenario whose user-given keys are ``data``."""
    defaults = copy.deepcopy(STYLES[detector])
    if detector == "virgo":
        strain = data.get("strain")
        if isinstance(strain, BaseModel):
            strain = strain.model_dump(exclude_unset=True)
        rate = strain.get("sample_rate", 4096.0) if isinstance(strain, dict) else 4096.0
        try:
            defaults["strain"]["channel"] = virgo_strain_channel(rate)
        except (TypeError, ValueError, OverflowError):
            pass  # a bad rate: left to the field's own validation error
    return defaults


def fill_unset(data, defaults: dict):
    """``data`` with every key of ``defaults`` it does not set filled in (nested mappings merge;
    lists and values given by the user are kept whole).

    A sub-model instance counts as setting the fields in its ``model_fields_set``; it is returned
    unchanged when it sets every key the defaults hold.
    """
    if isinstance(data, BaseModel):
        if _sets_all(data, defaults):
            return data
        data = data.model_dump(exclude_unset=True)
    if not isinstance(data, dict):
        return data  # not a mapping: the field's validation reports it
    out = dict(data)
    for key, value in defaults.items():
        if key not in out:
            out[key] = copy.deepcopy(value)
        elif isinstance(value, dict):
            out[key] = fill_unset(out[key], value)
    return out


def _sets_all(model: BaseModel, defaults: dict) -> bool:
    for key, value in defaults.items():
        if key not in model.model_fields_set:
            return False
        inner = getattr(model, key)
        if isinstance(value, dict) and isinstance(inner, BaseModel):
            if not _sets_all(inner, value):
                return False
    return True
