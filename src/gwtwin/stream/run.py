"""The online service on recorded frames: replay them into a watched directory, stream-clean
them, and check the result against offline cleaning (``gwtwin run`` step ``stream``).

:func:`stream_frames` starts a :func:`~gwtwin.stream.replay.replay_in_thread` of the frames
(the strain and the model's witnesses only, as a low-latency frame would carry) into
``output/incoming``, runs a :class:`~gwtwin.stream.service.StreamService` into
``output/out`` until the replay's last second, and writes ``output/summary.json``: the
service's summary, :func:`~gwtwin.stream.status.stream_status`, and, given an offline cleaning
of the same frames, the largest difference between the online and offline cleaned strain
relative to the largest offline prediction, over the time both cleaned where the safety gate
did not act (offline cleaning has no gate).  With ``replay_speed`` 0 the replay outruns the
service and the files queue up, so the latencies it logs measure the queue, not the service:
replay at 1 (real time) to measure latency (``benchmarks/bench_stream.py``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from gwtwin.errors import GwtwinError
from gwtwin.stream.config import StreamConfig, StreamStepConfig

SUMMARY_FILE = "summary.json"


def compare_offline(online_dir, offline_dir, strain_channel: str, suffix: str) -> dict:
    """max |online - offline| / max |offline prediction| over the span both wrote, leaving out
    the time the safety gate held the subtraction back (offline cleaning has no gate) and
    strain faults (from the stream's state vector); also how much time was left out."""
    from gwtwin.data import find_frames, read
    from gwtwin.data.channels import cleaned_channel, prediction_channel
    from gwtwin.stream.writer import STATE_BITS, STATE_RATE, state_channel

    cleaned, pred = cleaned_channel(strain_channel, suffix), prediction_channel(strain_channel)
    on_files = find_frames(Path(online_dir))
    off_files = find_frames(Path(offline_dir))
    if not on_files or not off_files:
        raise GwtwinError(f"nothing to compare: no frames in {online_dir} or {offline_dir}")
    a = max(on_files[0].start_ns, off_files[0].start_ns) // 10**9
    b = min(on_files[-1].end_ns, off_files[-1].end_ns) // 10**9
    on = read(Path(online_dir), [cleaned, pred], a, b).filled()
    off = read(Path(offline_dir), [cleaned, pred], a, b).filled()
    state = read(Path(online_dir), [state_channel(strain_channel)], a, b).filled()
    bits = np.nan_to_num(state.data[0].numpy()).astype(np.int64)
    skip = sum(1 << STATE_BITS[k] for k in ("CLEANING_DISABLED", "STRAIN_BAD", "RAW_PASSTHROUGH"))
    keep = np.repeat((bits & skip) == 0, int(on.sample_rate) // STATE_RATE)
    x, y = on.data.numpy(), off.data.numpy()
    ok = keep & np.isfinite(x).all(axis=0) & np.isfinite(y).all(axis=0)
    scale = float(np.abs(y[1][ok]).max()) if ok.any() else 0.0
    diff = np.abs(x[:, ok] - y[:, ok]).max(axis=1) if ok.any() else np.zeros(2)
    return {
        "span": [a, b],
        "compared_seconds": float(ok.sum() / on.sample_rate),
        "gated_or_bad_seconds": float((~keep).sum() / on.sample_rate),
        "max_abs_diff_cleaned": float(diff[0]),
        "max_abs_diff_prediction": float(diff[1]),
        "max_offline_prediction": scale,
        "relative": float(diff.max() / scale) if scale else None,
    }


def stream_frames(
    frames,
    output,
    config: StreamStepConfig | StreamConfig | None = None,
    *,
    model=None,
    tracking_uri: str | None = None,
    offline=None,
    log=print,
) -> dict:
    """Replay ``frames`` and stream-clean them (module docstring); returns the summary."""
    from gwtwin.data import find_frames
    from gwtwin.stream.replay import load_replay_config, replay_in_thread
    from gwtwin.stream.service import StreamService
    from gwtwin.stream.status import stream_status

    config = config or StreamStepConfig()
    output = Path(output)
    files = find_frames(frames)
    if not files:
        raise GwtwinError(f"no frame files in {frames}")
    t0 = time.perf_counter()
    fields = set(StreamConfig.model_fields)
    service_config = StreamConfig(**{k: v for k, v in config.model_dump().items() if k in fields})
    if service_config.end is None:
        service_config = service_config.model_copy(update={"end": int(files[-1].end_ns // 10**9)})
    service = StreamService(
        output / "incoming",
        output / "out",
        service_config,
        model=model,
        tracking_uri=tracking_uri,
        log=log,
    )
    spec = service.current.model.spec
    speed = getattr(config, "replay_speed", 0.0)
    duration = getattr(config, "replay_file_duration", 1)
    replay = load_replay_config(
        {
            "file_duration": duration,
            "speed": speed,
            "channels": [spec.strain_channel, *spec.witness_channels],
            "start": service_config.start,
            "end": service_config.end,
        }
    )
    thread, replayed = replay_in_thread(frames, output / "incoming", replay, log=log)
    summary = {"service": service.run()}
    thread.join()
    summary["replay"] = {k: v for k, v in replayed.items() if k != "error"}
    if "error" in replayed:
        raise GwtwinError(f"the replay failed: {replayed['error']}")
    summary["status"] = stream_status(output / "out")
    if offline is not None and Path(offline, "frames").is_dir():
        summary["offline"] = compare_offline(
            output / "out" / "frames",
            Path(offline) / "frames",
            spec.strain_channel,
            service_config.suffix,
        )
        log(
            f"[stream] online vs offline cleaning: max difference "
            f"{summary['offline']['relative']:.2e} of the largest prediction over "
            f"{summary['offline']['compared_seconds']:g} s (the gate acted on "
            f"{summary['offline']['gated_or_bad_seconds']:g} s)"
        )
    summary["elapsed"] = time.perf_counter() - t0
    (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))
    return summary
