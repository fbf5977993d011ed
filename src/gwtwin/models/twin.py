"""``TwinModel``: a trained network together with the conditioning and framing it needs.

A twin model is what the registry holds and what inference loads (``models:/name@alias``): the
plain ``nn.Module`` plus its :class:`~gwtwin.signal.conditioning.ConditioningSpec` (the witness
channels in order, their native rates, the standardisation, the strain PSD) and the window
geometry.  :meth:`TwinModel.predict` refuses witness data with a missing channel, channels in
another order, or a channel at another sample rate (named errors), conditions the witnesses
exactly as at training time, runs the network on overlapping windows hopped by the target
length and keeps the central parts; the same framing serves offline cleaning and, later, the
online service (windows start at multiples of the hop from the first usable sample).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gwtwin.data import Block
from gwtwin.data.channels import prediction_channel
from gwtwin.errors import GwtwinError
from gwtwin.signal.conditioning import (
    ConditioningSpec,
    condition_witnesses,
    uncondition_strain,
)

TWIN_FILE = "twin.json"  #: name of the metadata file stored next to the network
TWIN_FORMAT = "gwtwin-twin/1"


class ModelSpecMismatchError(GwtwinError):
    """A network and a conditioning spec (or a dataset) disagree, e.g. on the number of inputs."""


class TwinModel:
    """A witness-to-strain network with the conditioning and window geometry it was trained on.

    Parameters
    ----------
    network : nn.Module
        Maps ``[batch, n_features, window_size]`` to ``[batch, target_size]`` (time-domain
        family) or witness images to strain images (``kind="qimage"``).
    spec : ConditioningSpec
        How raw witnesses become the network's inputs (channels in order, native rates).
    kind : {"timeseries", "qimage"}
    window_duration, target_duration : float
        Input window and predicted central part, s.
    metadata : dict, optional
        Provenance (model name and parameters, dataset attributes, run id...).
    """

    def __init__(
        self,
        network: nn.Module,
        spec: ConditioningSpec,
        *,
        kind: str = "timeseries",
        window_duration: float,
        target_duration: float,
        metadata: dict[str, Any] | None = None,
    ):
        if kind not in ("timeseries", "qimage"):
            raise GwtwinError(f"kind must be 'timeseries' or 'qimage', found {kind!r}")
        if not 0 < target_duration <= window_duration:
            raise GwtwinError(
                f"expected 0 < target_duration <= window_duration, found {target_duration} s "
                f"and {window_duration} s"
            )
        n_in = getattr(network, "in_channels", None)
        if n_in is not None and n_in != spec.n_features:
            raise ModelSpecMismatchError(
                f"the network takes {n_in} input rows but the conditioning makes "
                f"{spec.n_features} ({spec.feature_names})"
            )
        self.network = network.eval()
        self.spec = spec
        self.kind = kind
        self.window_duration = float(window_duration)
        self.target_duration = float(target_duration)
        self.metadata = dict(metadata or {})

    # -- views --------------------------------------------------------------------------------
    @property
    def channels(self) -> list[str]:
        """Witness channels the model needs, in order."""
        return self.spec.witness_channels

    @property
    def sample_rates(self) -> dict[str, float]:
        """Native rate (Hz) of each witness channel."""
        return {w.name: w.sample_rate for w in self.spec.witnesses}

    @property
    def sample_rate(self) -> float:
        """Model rate, Hz."""
        return self.spec.sample_rate

    @property
    def window_size(self) -> int:
        return round(self.window_duration * self.sample_rate)

    @property
    def target_size(self) -> int:
        return round(self.target_duration * self.sample_rate)

    @property
    def margin(self) -> int:
        """Samples each side of the target part that a window needs."""
        return (self.window_size - self.target_size) // 2

    @property
    def edge_size(self) -> int:
        """Conditioning edge dropped at each end of the data, samples at the model rate
        (``spec.edge_duration`` rounded up to whole seconds so GPS times stay exact)."""
        return math.ceil(self.spec.edge_duration) * round(self.sample_rate)

    def __repr__(self) -> str:
        name = self.metadata.get("model", {}).get("name", type(self.network).__name__)
        return (
            f"TwinModel({name}, {self.kind}, {len(self.channels)} witnesses "
            f"{self.channels}, {self.sample_rate:g} Hz, window {self.window_duration:g} s, "
            f"target {self.target_duration:g} s)"
        )

    # -- running ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_windows(self, witness, *, batch_size: int = 32) -> torch.Tensor:
        """Network output for conditioned windows ``[N, C, ...]`` (as stored in a dataset),
        batched, in eval mode, on the network's device; returned on the CPU."""
        x = torch.as_tensor(witness)
        if x.ndim < 3 or x.shape[1] != self.spec.n_features:
            raise ModelSpecMismatchError(
                f"expected windows [N, {self.spec.n_features}, ...] ({self.spec.feature_names}), "
                f"found shape {tuple(x.shape)}"
            )
        if self.kind == "timeseries" and x.shape[-1] != self.window_size:
            raise GwtwinError(
                f"expected windows of {self.window_duration:g} s ({self.window_size} samples at "
                f"{self.sample_rate:g} Hz), found {x.shape[-1]} samples"
            )
        self.network.eval()
        device = next(self.network.parameters()).device
        out = [
            self.network(x[i : i + batch_size].to(device, torch.float32)).cpu()
            for i in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(out)

    @torch.no_grad()
    def predict(self, data, *, units: str = "whitened", batch_size: int = 16) -> Block:
        """Predicted strain noise from raw witness data over one contiguous span.

        Parameters
        ----------
        data : Block, sequence of Blocks, FrameData or mapping channel -> Block
            The witness channels at their native rates (Blocks of different rates are fine); in
            a Block or sequence they must come in :attr:`channels` order.
        units : {"whitened", "strain"}
            ``"whitened"``: the network output at the model rate (whitened strain units);
            ``"strain"``: coloured back and resampled to the strain's native rate with
            :func:`~gwtwin.signal.conditioning.uncondition_strain` (what cleaning subtracts),
            its own edges dropped.
        batch_size : int
            Windows per network call.

        Returns
        -------
        Block
            One channel (:func:`prediction_channel`) covering the span less the conditioning
            edges and the window margin at each end (less the colouring edges for ``"strain"``).

        Raises
        ------
        MissingChannelError, ChannelOrderError, SampleRateMismatchError
            Witnesses missing, out of order, or at another native rate than at training time.
        GwtwinError
            Too little data for one window.
        """
        if self.kind != "timeseries":
            raise GwtwinError(
                "predict() gives a strain time series, which only the time-domain family can; "
                f"this model is {self.kind!r} (use predict_windows on Q-images)"
            )
        if units not in ("whitened", "strain"):
            raise GwtwinError(f"units must be 'whitened' or 'strain', found {units!r}")
        x = condition_witnesses(data, self.spec)
        t0_ns = _start_ns(data)
        n = x.shape[-1]
        edge, win, hop, margin = self.edge_size, self.window_size, self.target_size, self.margin
        usable = n - 2 * edge
        if usable < win:
            raise GwtwinError(
                f"expected at least {(win + 2 * edge) / self.sample_rate:g} s of witness data "
                f"(a {self.window_duration:g} s window plus {edge / self.sample_rate:g} s of "
                f"conditioning edge each side), found {n / self.sample_rate:g} s"
            )
        starts = list(range(edge, n - edge - win + 1, hop))
        if starts[-1] + win < n - edge:
            starts.append(n - edge - win)  # last window aligned on the end; overlap dropped
        out = torch.zeros(n, dtype=torch.float32)
        filled = 0  # each sample comes from the first window whose target part covers it
        for i in range(0, len(starts), batch_size):
            chunk = starts[i : i + batch_size]
            windows = torch.stack([x[:, s : s + win] for s in chunk])
            pred = self.predict_windows(windows, batch_size=batch_size)
            for s, p in zip(chunk, pred, strict=True):
                skip = max(0, filled - (s + margin))
                out[s + margin + skip : s + margin + hop] = p[skip:]
                filled = s + margin + hop
        lo, hi = edge + margin, n - edge - margin
        name = prediction_channel(self.spec.strain_channel)
        full = Block(out[None], t0_ns, self.sample_rate, (name,), ("",))
        block = full.isel(lo, hi)
        if units == "whitened":
            return block
        strain = uncondition_strain(block.data[0].to(torch.float64), self.spec)
        coloured = Block(
            strain[None], block.t0_ns, self.spec.strain_rate, (name,), (self.spec.strain_unit,)
        )
        cut = math.ceil(self.spec.edge_duration) * round(self.spec.strain_rate)
        return coloured.isel(cut, coloured.size - cut)

    # -- persistence --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """JSON-able description (everything but the weights): the ``twin.json`` content."""
        return {
            "format": TWIN_FORMAT,
            "kind": self.kind,
            "window_duration": self.window_duration,
            "target_duration": self.target_duration,
            "channels": self.channels,
            "sample_rates": self.sample_rates,
            "feature_names": self.spec.feature_names,
            "conditioning": self.spec.to_dict(),
            "metadata": self.metadata,
        }

    def write_description(self, directory: str | Path) -> Path:
        """Write ``twin.json`` into ``directory``; returns its path."""
        path = Path(directory) / TWIN_FILE
        path.write_text(json.dumps(self.describe(), indent=1))
        return path

    @classmethod
    def from_parts(cls, network: nn.Module, description: dict[str, Any]) -> TwinModel:
        """Rebuild from a network and a :meth:`describe` mapping."""
        if description.get("format") != TWIN_FORMAT:
            raise GwtwinError(
                f"expected a {TWIN_FORMAT!r} description, found format "
                f"{description.get('format')!r}"
            )
        return cls(
            network,
            ConditioningSpec.from_dict(description["conditioning"]),
            kind=description["kind"],
            window_duration=description["window_duration"],
            target_duration=description["target_duration"],
            metadata=description.get("metadata", {}),
        )

    @classmethod
    def load(cls, model_uri: str, *, tracking_uri: str | None = None, map_location="cpu"):
        """Load a logged twin model, e.g. ``models:/gwtwin-witness-td@candidate``.

        Parameters
        ----------
        model_uri : str
            Any MLflow model URI (``models:/name@alias``, ``models:/name/3``, ``runs:/...``) or a
            local MLflow model directory.
        tracking_uri : str, optional
            Tracking/registry URI (e.g. ``sqlite:///workdir/mlflow.db``); default MLflow's own.
        """
        import mlflow
        import mlflow.pytorch

        if tracking_uri is not None:
            mlflow.set_tracking_uri(tracking_uri)
            mlflow.set_registry_uri(tracking_uri)
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
        except mlflow.exceptions.MlflowException as exc:
            raise GwtwinError(f"cannot load model {model_uri!r}: {exc.message}") from None
        files = list(local.rglob(TWIN_FILE))
        if not files:
            raise GwtwinError(
                f"{model_uri} is not a gwtwin twin model: no {TWIN_FILE} among its artifacts"
            )
        description = json.loads(files[0].read_text())
        network = mlflow.pytorch.load_model(str(local), map_location=map_location)
        return cls.from_parts(network, description)


def _start_ns(data) -> int:
    """GPS start (ns) of the witness data (all pieces share it; conditioning checks that)."""
    from collections.abc import Mapping

    from gwtwin.data import FrameData

    if isinstance(data, FrameData):
        data = data.segments
    if isinstance(data, Block):
        return data.t0_ns
    if isinstance(data, Mapping):
        data = list(data.values())
    first = data[0]
    if isinstance(first, FrameData):
        return _start_ns(first)
    if isinstance(first, Block):
        return first.t0_ns
    return _start_ns(first)
