"""``gwtwin glitches``: the glitches of strain alone, flagged
(:func:`gwtwin.infer.strain_only.flag_strain_glitches`)."""

from __future__ import annotations

import argparse

from gwtwin.cli._common import add_dq_bits


def add_parser(subparsers) -> None:
    glt = subparsers.add_parser(
        "glitches",
        help="find and flag the glitches of strain alone (no auxiliary channel needed)",
        description="Q-tile triggers of the strain (GWF or HDF5 frames, GWOSC files included, "
        "restricted to DQ-good time), the glitches above the SNR threshold as a table and as "
        "the <IFO>:GWTWIN-UNWITNESSED:1 flag (LIGO_LW XML, HDF5, JSON), a plot and a summary; "
        "`gwtwin report DIR` shows them.",
    )
    glt.add_argument("source", help="frame file or directory (GWOSC strain files work as they are)")
    glt.add_argument("--output", "-o", required=True, help="output directory")
    glt.add_argument(
        "--strain",
        help="strain channel, full name or glob (default: the only channel of a strain file)",
    )
    glt.add_argument("--start", type=float, help="GPS start (default: start of the files)")
    glt.add_argument("--end", type=float, help="GPS end (default: end of the files)")
    glt.add_argument("--snr-threshold", type=float, default=8.0, help="glitch SNR (default 8)")
    glt.add_argument("--frange", type=float, nargs=2, metavar=("FMIN", "FMAX"), help="Hz")
    add_dq_bits(glt)
    glt.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gwtwin.infer.strain_only import StrainFlagConfig, flag_strain_glitches

    config = StrainFlagConfig(
        snr_threshold=args.snr_threshold, frange=tuple(args.frange) if args.frange else None
    )
    flag_strain_glitches(
        args.source,
        args.output,
        args.strain,
        config,
        dq_bits=args.dq_bits,
        start=args.start,
        end=args.end,
    )
    print(f"wrote {args.output}/glitches.json, glitches.csv, triggers.h5, flags/")
    return 0
