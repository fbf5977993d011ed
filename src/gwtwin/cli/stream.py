"""``gwtwin stream``: the online service (:mod:`gwtwin.stream.service`), its replay source
(:mod:`gwtwin.stream.replay`) and ``gwtwin stream status`` (:mod:`gwtwin.stream.status`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gwtwin.errors import GwtwinError


def add_parser(subparsers) -> None:
    st = subparsers.add_parser(
        "stream",
        help="clean a live frame stream in 1 s increments (online), or show a stream's status",
        description="Watch a directory that a data-acquisition system fills with frame files "
        "(GWF or HDF5, OBS-TAG-GPS-DUR names, any whole-second duration) and write cleaned "
        "strain, the subtracted prediction and a state vector in 1 s frames, with flags, a "
        "JSON-lines log and a checkpoint; the model follows a registry alias and is swapped at "
        "an increment boundary when the alias moves.  `gwtwin stream status OUTPUT` summarises "
        "a stream.  --replay SIM_DIR feeds the watched directory from recorded frames (real-time "
        "pace or faster, optional faults) for tests and demos.",
    )
    st.add_argument("action", nargs="?", choices=["status"], help="status: summarise OUTPUT")
    st.add_argument("path", nargs="?", help="(status) the stream's output directory")
    st.add_argument("--frames", help="the watched directory")
    st.add_argument("--model", "-m", help="model URI, e.g. models:/gwtwin-witness-td@production")
    st.add_argument("--tracking-uri", help="MLflow tracking/registry URI")
    st.add_argument("--workdir", help="a `gwtwin train` work directory (its mlflow.db)")
    st.add_argument("--output", "-o", help="output directory (a state.json there is resumed)")
    st.add_argument("--config", help="YAML with a stream: section (and replay: for --replay)")
    st.add_argument("--start", type=int, help="GPS to start at")
    st.add_argument("--end", type=int, help="GPS to stop at")
    st.add_argument("--idle-timeout", type=float, help="stop after this long without a file, s")
    st.add_argument("--lookahead", type=int, help="low-latency mode: emit after this many s")
    st.add_argument("--replay", metavar="SIM_DIR", help="replay frames from SIM_DIR[/frames]")
    st.add_argument(
        "--speed", type=float, help="replay speed, x real time (0: as fast as possible)"
    )
    st.add_argument("--file-duration", type=int, help="replay file duration, s")
    st.add_argument(
        "--fault",
        action="append",
        metavar="KIND@GPS[:DELAY]",
        help="replay fault (drop, delay, corrupt, truncate, nan, missing_channel, rate_change), "
        "repeatable, e.g. drop@1400000100 or delay@1400000200:3",
    )
    st.add_argument("--json", action="store_true", help="(status) print JSON")
    st.set_defaults(func=run)


def _fault(text: str) -> dict:
    kind, sep, rest = text.partition("@")
    if not sep:
        raise GwtwinError(f"--fault expects KIND@GPS[:DELAY], found {text!r}")
    gps, _, delay = rest.partition(":")
    try:
        out = {"kind": kind, "gps": float(gps)}
        if delay:
            out["delay"] = float(delay)
    except ValueError:
        raise GwtwinError(
            f"--fault expects KIND@GPS[:DELAY] with numbers, found {text!r}"
        ) from None
    return out


def run(args: argparse.Namespace) -> int:
    if args.action == "status":
        from gwtwin.stream.status import format_status, stream_status

        target = args.path or args.output
        if not target:
            raise GwtwinError("gwtwin stream status needs the stream's output directory")
        status = stream_status(target)
        print(json.dumps(status, indent=1, default=str) if args.json else format_status(status))
        return 0
    from gwtwin.stream.config import load_stream_config
    from gwtwin.stream.service import StreamService

    if not args.output:
        raise GwtwinError("gwtwin stream needs --output DIR")
    overrides = {
        k: v
        for k, v in {
            "start": args.start,
            "end": args.end,
            "idle_timeout": args.idle_timeout,
            "lookahead": args.lookahead,
            "model": args.model,
        }.items()
        if v is not None
    }
    config = load_stream_config(args.config, overrides)
    tracking = args.tracking_uri
    if args.workdir and not tracking:
        from gwtwin.cli._common import workdir_tracking_uri

        tracking = workdir_tracking_uri(args.workdir)
    watch = Path(args.frames) if args.frames else None
    thread = None
    if args.replay:
        thread, watch = _start_replay(args, watch)
    if watch is None:
        raise GwtwinError("gwtwin stream needs --frames DIR (the watched directory) or --replay")
    service = StreamService(watch, args.output, config, tracking_uri=tracking)
    summary = service.run()
    if thread is not None:
        thread.join()
    print(json.dumps(summary, default=str))
    return 0


def _start_replay(args, watch):
    from gwtwin.stream.replay import load_replay_config, replay_in_thread

    source = Path(args.replay)
    if (source / "frames").is_dir():
        source = source / "frames"
    overrides = {}
    if args.speed is not None:
        overrides["speed"] = args.speed
    if args.file_duration is not None:
        overrides["file_duration"] = args.file_duration
    if args.fault:
        overrides["faults"] = [_fault(f) for f in args.fault]
    if args.start is not None:
        overrides["start"] = args.start
    if args.end is not None:
        overrides["end"] = args.end
    config = load_replay_config(args.config, overrides)
    watch = watch or Path(args.output) / "incoming"
    thread, _ = replay_in_thread(source, watch, config, log=print)
    return thread, watch
