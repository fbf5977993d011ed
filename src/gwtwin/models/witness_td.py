"""The time-domain witness-to-strain network (``witness_td``, the default model).

Input: conditioned witness features ``[batch, feature, time]`` at the model rate (1024 Hz by
default), e.g. the resampled, standardised witnesses and the scattered-light fringe features
``sin/cos(4 pi n x / lambda)`` of :mod:`gwtwin.signal.conditioning`.  Output: the coupled noise in
*whitened* strain over the central ``target_duration`` of the window, ``[batch, time]``.

The architecture follows the couplings it has to learn:

0. **excess-power gate** (:meth:`WitnessTD.gate_inputs`, first, for the network and the linear
   stage alike): a gated feature row ``x`` becomes ``g x`` with the time-local Wiener gain
   ``g = clamp(1 - alpha F / P, 0, 1)``, ``P`` its power in a unit-sum Hann window of
   ``gate_duration`` s.  A witness's sensor-noise floor ``F`` does not couple into strain, but a
   time-invariant filter solved on glitch-rich windows passes it through at full gain in quiet
   time; the gate closes below ``alpha F``.  ``gate_floor`` / ``gate_alpha`` are buffers fitted
   from the data (:mod:`gwtwin.train.gate`); a zero floor leaves a row (and the model) unchanged.
1. **pointwise products at the full rate**: ``(A x) * (B x)`` (``products`` channels, 1x1
   projections) are appended to the features.  Scattered light is a memoryless function of the
   displacement (linear in the fringe features), the power-line coupling is the product mains x
   angular control (bilinear), the magnetic coupling is linear.
2. **encoder**: a strided convolution (kernel = stride = ``input_stride``, 4 by default) maps the
   full-rate features onto ``hidden`` channels at ``rate / input_stride`` (a learnt analysis
   filter bank: 4 phases x features; nothing below the model's Nyquist is lost), followed by a
   local residual stack: dilated convolutions (dilations 1, 2, 4, ...) with GELU/SiLU,
   ``h + W2 act(W1 h)``, ~0.1 s of memory (the magnetic transfer function and its few-ms delay,
   local non-linearities).  Working at a quarter of the rate keeps a CPU epoch short: on CPU the
   cost is the number of full-rate activations, not the FLOPs.
3. **context encoder-decoder**: strided convolutions further down (16 Hz by default), dilated
   residual blocks there (several seconds of context), linear upsampling with skip connections
   back, producing a feature-wise modulation ``h * (1 + scale) + shift`` (FiLM).  It lets the
   network gate on slow context, e.g. switch a noisy magnetometer off between bursts (its own
   noise, projected into strain, can exceed the strain noise, so a purely linear map would add
   noise).  Its last layer starts at zero, so training starts from the local network.
4. **decoder and output filter bank**: a transposed convolution (the synthesis filter bank) back
   to ``fir_channels`` full-rate signals, each filtered by a learnable non-causal FIR of
   ``fir_duration`` seconds (FFT convolution) and summed: the whitening of strain is a long
   linear filter (the Hann-truncated inverse ASD), learnt here explicitly;
   :meth:`WitnessTD.set_output_filter` initialises it from the strain PSD.

5. **linear stage** (``linear_taps > 0``): in parallel with the network, every feature goes
   through the strain's own whitening filter (fixed, ``linear_filter_size`` taps, from the
   dataset's conditioning) and a short per-feature FIR (``linear_taps`` lags) whose taps are
   solved in closed form before training (:func:`gwtwin.train.linear.fit_linear_stage`, a MISO
   Wiener filter by least squares on the training windows), and the network learns what the
   linear stage leaves.  Scattered light is linear in the fringe features and the magnetic
   coupling is linear in the magnetometer, so the linear stage alone removes ~99.5 % of them on
   held-out time (the network alone stopped at 92-95 %: noise-dominated gradients do not
   resolve the last percent, which is what a residual SNR < 5 at SNR 50 needs).  Both filters
   are a single buffer ``linear_fir`` (their convolution), saved with the weights; zero taps
   (not yet fitted) make the stage inert.

No ReLU bottleneck: the last layers are linear, so the single-channel output can take any sign
and size.  Non-causal within the window: the output at time t depends on the witnesses in
``t +- receptive_field / 2``.

Latency: the prediction for the central ``target_duration`` of a window needs the whole window,
so the sample at the end of the target part is available ``(window_duration - target_duration)
/ 2`` seconds after it was recorded (the margin) and the first one ``margin + target_duration``
later; :attr:`WitnessTD.latency` gives the worst case in seconds.  With the defaults (8 s
windows, 4 s target) that is 6 s offline framing; online, run it on windows hopped by a shorter
``target_duration`` for lower latency (the margin, 2 s, is the floor set by the receptive field).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.models.registry import register_model

_ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU}


def _activation(name: str) -> type[nn.Module]:
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(
            f"activation must be one of {', '.join(_ACTIVATIONS)}, found {name!r} "
            "(no ReLU: a ReLU bottleneck before a signed single-channel output loses half of it)"
        ) from None


class _ResBlock(nn.Module):
    """``x + W2 act(W1 x)`` with a dilated, ``same``-padded ``W1`` (odd kernel)."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, act: type[nn.Module]):
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=pad)
        self.act = act()
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(self.act(self.conv(x)))


def fft_conv_same(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Depthwise non-causal FIR by FFT: ``x [B, K, T]``, ``taps [K, L]`` (odd L, centred).

    ``y[b, k, t] = sum_j taps[k, j] x[b, k, t + j - (L - 1) / 2]`` with zeros outside ``x``.
    """
    n_t = x.shape[-1]
    length = taps.shape[-1]
    nfft = 1 << math.ceil(math.log2(n_t + length - 1))
    # correlation (not convolution) so that taps[j] multiplies x[t + j - c]: flip the taps
    spec = torch.fft.rfft(x, nfft) * torch.fft.rfft(taps.flip(-1), nfft)
    y = torch.fft.irfft(spec, nfft)
    c = (length - 1) // 2
    return y[..., c : c + n_t]


@register_model("witness_td")
class WitnessTD(nn.Module):
    """Multi-channel 1-D encoder-decoder from witness features to whitened strain noise.

    Parameters
    ----------
    in_channels : int
        Number of input features (rows of the conditioned witnesses).
    sample_rate : float
        Model rate, Hz (1024 by default).
    window_duration : float
        Length of the input windows, s (training windows; longer inputs work too).
    target_duration : float
        Central part of the window that is predicted, s.
    hidden : int
        Feature channels after the input encoder.
    products : int
        Channels of the bilinear (product) branch at the full rate (0 disables it).
    input_stride : int
        Downsampling of the input encoder (its kernel size too).
    local_layers : int
        Dilated residual blocks after the encoder (dilations ``1, 2, 4, ...``).
    kernel_size : int
        Odd kernel size of every dilated convolution.
    context_levels : int
        Further downsampling levels of the context path (0 disables it).
    context_stride : int
        Downsampling factor per context level.
    context_channels : int
        Channels of the context path.
    context_layers : int
        Dilated residual blocks at the coarsest level (dilations ``1, 2, 4, ...``).
    fir_duration : float
        Length of the learnable output FIRs, s (non-causal, centred).
    fir_channels : int
        Number of output FIRs summed into the prediction.
    activation : {"gelu", "silu"}
    linear_taps : int
        Lags of the per-feature FIR of the linear stage (odd; 0 disables the stage).
    linear_filter_size : int
        Length of the fixed filter before those FIRs (the strain's whitening as correlation
        taps, :func:`gwtwin.signal.conditioning.whitening_kernel`; odd; 0: none).  Training
        sets it from the dataset.
    linear_pairs : list of [int, int], optional
        Feature pairs whose products ``x_i x_j`` are extra inputs of the linear stage (a
        bilinear coupling such as mains x angular control is linear in them).  Training sets
        the cross-witness pairs of standardised witnesses.
    linear_only : list of int, optional
        Features that feed only the linear stage, not the network (training sets the features
        of fringe-conditioned witnesses here: scattered light is linear in them, and a network
        seeing them added 2-4 % of a scattered-light glitch's power back as error).
    gate_duration : float
        Length of the excess-power gate's Hann window, s (an odd number of samples); the gate
        itself is off until :meth:`set_gate` gives a row a floor.
    """

    def __init__(
        self,
        in_channels: int,
        sample_rate: float = 1024.0,
        window_duration: float = 8.0,
        target_duration: float = 4.0,
        hidden: int = 32,
        products: int = 8,
        input_stride: int = 4,
        local_layers: int = 4,
        kernel_size: int = 3,
        context_levels: int = 2,
        context_stride: int = 4,
        context_channels: int = 32,
        context_layers: int = 4,
        fir_duration: float = 1.0,
        fir_channels: int = 4,
        activation: str = "gelu",
        linear_taps: int = 33,
        linear_filter_size: int = 0,
        linear_pairs: list[list[int]] | None = None,
        linear_only: list[int] | None = None,
        gate_duration: float = 0.0625,
    ):
        super().__init__()
        self.hparams_ = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        act = _activation(activation)
        if int(in_channels) < 1:
            raise ConfigError(f"in_channels must be >= 1, found {in_channels}")
        if kernel_size % 2 != 1 or kernel_size < 1:
            raise ConfigError(f"kernel_size must be odd and positive, found {kernel_size}")
        if input_stride < 1 or context_stride < 2:
            raise ConfigError(
                f"expected input_stride >= 1 and context_stride >= 2, found {input_stride} "
                f"and {context_stride}"
            )
        if not 0 < target_duration <= window_duration:
            raise ConfigError(
                f"expected 0 < target_duration <= window_duration, found target_duration="
                f"{target_duration} s and window_duration={window_duration} s"
            )
        for key, value in (
            ("linear_taps", linear_taps),
            ("linear_filter_size", linear_filter_size),
        ):
            if value < 0 or (value and value % 2 != 1):
                raise ConfigError(f"{key} must be 0 or a positive odd number, found {value}")
        if not gate_duration > 0:
            raise ConfigError(f"gate_duration must be > 0 s, found {gate_duration}")
        self.in_channels = int(in_channels)
        self.gate_size = 2 * (round(gate_duration * sample_rate) // 2) + 1  # odd
        self.register_buffer("gate_floor", torch.zeros(self.in_channels))
        self.register_buffer("gate_alpha", torch.zeros(self.in_channels))
        only = sorted({int(i) for i in (linear_only or [])})
        if only and not linear_taps:
            raise ConfigError(
                f"linear_only={only} names features for the linear stage, but linear_taps=0 "
                "disables it"
            )
        if any(not 0 <= i < self.in_channels for i in only):
            raise ConfigError(
                f"linear_only={only} must index the {self.in_channels} input features"
            )
        keep = [i for i in range(self.in_channels) if i not in only]
        if not keep:
            raise ConfigError(
                f"linear_only={only} leaves no feature for the network; remove one from it"
            )
        self.hparams_["linear_only"] = only
        pairs = [[int(i), int(j)] for i, j in (linear_pairs or [])]
        if pairs and not linear_taps:
            raise ConfigError(
                f"linear_pairs={pairs} are inputs of the linear stage, but linear_taps=0 "
                "disables it"
            )
        if any(not (0 <= i < self.in_channels and 0 <= j < self.in_channels) for i, j in pairs):
            raise ConfigError(
                f"linear_pairs={pairs} must index the {self.in_channels} input features"
            )
        self.hparams_["linear_pairs"] = pairs
        self.linear_pairs = pairs
        self.register_buffer("network_features", torch.tensor(keep), persistent=False)
        net_in = len(keep)
        self.sample_rate = float(sample_rate)
        self.window_size = round(window_duration * sample_rate)
        self.target_size = round(target_duration * sample_rate)
        self.margin = (self.window_size - self.target_size) // 2
        if self.window_size - self.target_size != 2 * self.margin:
            raise ConfigError(
                "window_duration - target_duration must be an even number of samples at "
                f"{sample_rate:g} Hz, found {self.window_size - self.target_size}"
            )
        self.kernel_size = kernel_size
        self.input_stride = input_stride

        self.prod_a = nn.Conv1d(net_in, products, 1) if products else None
        self.prod_b = nn.Conv1d(net_in, products, 1) if products else None
        self.encode = nn.Conv1d(net_in + products, hidden, input_stride, stride=input_stride)
        self.local = nn.ModuleList(
            _ResBlock(hidden, kernel_size, 2**i, act) for i in range(local_layers)
        )
        self.local_dilations = [2**i for i in range(local_layers)]

        self.context_levels = context_levels
        self.context_stride = context_stride
        self.context_layers = context_layers
        if context_levels:
            ch = context_channels
            self.ctx_in = nn.Conv1d(hidden, ch, 1)
            self.down = nn.ModuleList(
                nn.Sequential(
                    nn.Conv1d(ch, ch, context_stride, stride=context_stride),
                    act(),
                    _ResBlock(ch, kernel_size, 1, act),
                )
                for _ in range(context_levels)
            )
            self.bottom = nn.Sequential(
                *(_ResBlock(ch, kernel_size, 2**i, act) for i in range(context_layers))
            )
            self.up = nn.ModuleList(
                _ResBlock(ch, kernel_size, 1, act) for _ in range(context_levels)
            )
            self.film = nn.Conv1d(ch, 2 * hidden, 1)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

        self.decode = nn.ConvTranspose1d(hidden, fir_channels, input_stride, stride=input_stride)
        if linear_taps:
            # with a linear stage the network learns a correction to it: start it at zero, so
            # that its random initial output is not a noise the training has to unlearn (it
            # did not fully: 93.6 % of scattered-light power removed vs 98 % by the stage alone)
            nn.init.zeros_(self.decode.weight)
            nn.init.zeros_(self.decode.bias)
        self.linear_taps = int(linear_taps)
        self.linear_filter_size = int(linear_filter_size)
        linear_size = (max(self.linear_filter_size, 1) + self.linear_taps - 1) if linear_taps else 0
        self.register_buffer("linear_fir", torch.zeros(self.in_channels + len(pairs), linear_size))
        fir_size = 2 * (round(fir_duration * sample_rate) // 2) + 1
        taps = torch.zeros(fir_channels, fir_size)
        taps[:, fir_size // 2] = 1.0
        self.fir = nn.Parameter(taps)
        if linear_size and linear_size // 2 + self.gate_half > self.margin:
            reach = linear_size // 2 + self.gate_half
            raise ConfigError(
                f"the linear stage (whitening filter of {self.linear_filter_size} taps + "
                f"{self.linear_taps} lags + the gate: +-{reach / sample_rate:.2f} s) exceeds the "
                f"margin (window_duration - target_duration) / 2 = {self.margin / sample_rate:.2f}"
                " s; lengthen the window, or set model_kwargs.linear_taps: 0 to go without it"
            )
        if self.receptive_field_size // 2 > self.margin:
            raise ConfigError(
                f"the receptive field (+-{self.receptive_field / 2:.2f} s) exceeds the margin "
                f"(window_duration - target_duration) / 2 = {self.margin / sample_rate:.2f} s: "
                "the predicted part would see the zero padding; lengthen the window or shorten "
                "fir_duration / the context"
            )

    # -- geometry ------------------------------------------------------------------------------
    @property
    def block_size(self) -> int:
        """Samples per coarsest-grid step; inputs are zero-padded to a multiple of it."""
        return self.input_stride * self.context_stride**self.context_levels

    @property
    def receptive_field_size(self) -> int:
        """Upper bound of the receptive field, samples (odd; the output at t depends on at most
        ``t +- receptive_field_size // 2``)."""
        k = (self.kernel_size - 1) // 2
        s0 = self.input_stride
        side = (s0 - 1) + sum(k * d * s0 for d in self.local_dilations)
        if self.context_levels:
            s = self.context_stride
            for level in range(1, self.context_levels + 1):
                fine, coarse = s0 * s ** (level - 1), s0 * s**level
                side += (s - 1) * fine + k * coarse  # strided conv and block into the level
                side += coarse + k * fine  # linear upsampling out of it, block on the finer
            side += sum(k * 2**i for i in range(self.context_layers)) * s0 * s**self.context_levels
        side += (s0 - 1) + self.fir.shape[-1] // 2
        linear = getattr(self, "linear_fir", None)
        if linear is not None:
            side = max(side, linear.shape[-1] // 2)
        return 2 * (side + self.gate_half) + 1

    @property
    def gate_half(self) -> int:
        """Half width of the gate's power window, samples (0 for a model saved without it)."""
        return getattr(self, "gate_size", 1) // 2

    @property
    def receptive_field(self) -> float:
        """Receptive field (upper bound), seconds."""
        return self.receptive_field_size / self.sample_rate

    @property
    def latency(self) -> float:
        """Worst-case latency of windowed prediction, s: ``margin + target_duration``."""
        return (self.margin + self.target_size) / self.sample_rate

    def set_output_filter(self, taps) -> None:
        """Initialise every output FIR with ``taps`` (e.g. the strain whitening filter at the
        model rate), normalised to unit peak, centred on its peak, cropped or zero-padded to
        the FIR length."""
        taps = torch.as_tensor(taps, dtype=torch.float64).flatten()
        if taps.numel() == 0 or not bool(torch.isfinite(taps).all()) or not taps.abs().max():
            raise GwtwinError("output filter taps must be finite and not all zero")
        taps = taps / taps.abs().max()
        n = self.fir.shape[-1]
        lo = int(taps.abs().argmax()) - n // 2
        src = torch.arange(lo, lo + n)
        ok = (src >= 0) & (src < taps.numel())
        out = torch.zeros(n, dtype=torch.float64)
        out[ok] = taps[src[ok]]
        with torch.no_grad():
            self.fir.copy_(out.to(self.fir.dtype).expand_as(self.fir))

    # -- excess-power gate -------------------------------------------------------------------
    def set_gate(self, floor, alpha) -> None:
        """Gate parameters per input row: ``floor`` (the noise power ``F``; 0: not gated) and
        ``alpha`` (the gate opens where the local power exceeds ``alpha F``)."""
        floor = torch.as_tensor(floor, dtype=torch.float64).flatten()
        alpha = torch.as_tensor(alpha, dtype=torch.float64).flatten()
        n = self.in_channels
        if floor.numel() != n or alpha.numel() != n:
            raise GwtwinError(
                f"expected a gate floor and alpha per input row ({n}), found {floor.numel()} "
                f"and {alpha.numel()}"
            )
        if not bool(torch.isfinite(floor).all() & torch.isfinite(alpha).all()):
            raise GwtwinError("gate floor and alpha must be finite")
        if bool((floor < 0).any() | (alpha < 0).any()):
            raise GwtwinError("gate floor and alpha must be >= 0")
        with torch.no_grad():
            self.gate_floor.copy_(floor.to(self.gate_floor.dtype))
            self.gate_alpha.copy_(alpha.to(self.gate_alpha.dtype))

    @property
    def gated_rows(self) -> list[int]:
        """Input rows the gate acts on (a non-zero floor)."""
        floor = getattr(self, "gate_floor", None)
        return [] if floor is None else torch.nonzero(floor > 0).flatten().tolist()

    def gate_window(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """The gate's unit-sum Hann window, ``gate_size`` samples (no zero end points)."""
        w = torch.hann_window(self.gate_size + 2, periodic=False, dtype=dtype, device=device)
        return w[1:-1] / w[1:-1].sum()

    def gate_power(self, x: torch.Tensor) -> torch.Tensor:
        """Local power ``P = (x^2) * w`` of ``x [B, R, T]``: the unit-sum Hann window ``w``,
        centred, zeros outside ``x``."""
        w = self.gate_window(x.dtype, x.device)
        rows = x.shape[1]
        return F.conv1d(x * x, w.expand(rows, 1, -1), padding=w.numel() // 2, groups=rows)

    def gate_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The gated features: row ``r`` with a floor becomes ``g x``, ``g = clamp(1 - alpha_r
        F_r / P, 0, 1)`` (0 where ``P = 0``); other rows pass unchanged (the same tensor when
        no row is gated)."""
        rows = self.gated_rows
        if not rows:
            return x
        index = torch.tensor(rows, device=x.device)
        xs = x.index_select(1, index)
        p = self.gate_power(xs)
        level = (self.gate_floor * self.gate_alpha).index_select(0, index).to(x.dtype)
        positive = p > 0
        gain = (1.0 - level[None, :, None] / torch.where(positive, p, 1.0)).clamp(0.0, 1.0)
        gain = torch.where(positive, gain, torch.zeros_like(gain))
        return x.index_copy(1, index, gain * xs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a state dict from before the gate: no gate buffers means not gated
        for name in ("gate_floor", "gate_alpha"):
            if prefix + name not in state_dict and hasattr(self, name):
                state_dict[prefix + name] = torch.zeros_like(getattr(self, name))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def linear_inputs(self) -> int:
        """Rows entering the linear stage: the features, then the ``linear_pairs`` products."""
        return self.in_channels + len(getattr(self, "linear_pairs", []))

    def linear_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, T] -> [B, linear_inputs, T]``: the features and their products."""
        pairs = getattr(self, "linear_pairs", [])
        if not pairs:
            return x
        return torch.cat([x, *(x[:, i : i + 1] * x[:, j : j + 1] for i, j in pairs)], dim=1)

    def linear_parts(self, x: torch.Tensor, groups) -> tuple[torch.Tensor, torch.Tensor]:
        """The linear stage over the central part: its output ``[B, T - 2 margin]`` and each
        feature group's share ``[B, G, T - 2 margin]`` (a group's features and every product
        input drawn from it: exactly what setting the group's features to 0 takes away)."""
        self._check(x)
        z = fft_conv_same(self.linear_features(self.gate_inputs(x)), self.linear_fir.to(x.dtype))
        z = z[..., self.margin : x.shape[-1] - self.margin]
        pairs = getattr(self, "linear_pairs", [])
        parts = []
        for group in groups:
            g = {int(i) for i in group}
            rows = sorted(g) + [
                self.in_channels + k for k, (i, j) in enumerate(pairs) if i in g or j in g
            ]
            parts.append(z[:, rows].sum(1))
        return z.sum(1), torch.stack(parts, 1)

    @property
    def linear_fitted(self) -> bool:
        """Whether the linear stage exists and holds fitted (non-zero) taps."""
        linear = getattr(self, "linear_fir", None)
        return linear is not None and linear.numel() > 0 and bool(linear.abs().max() > 0)

    def set_linear_stage(self, coefficients, filter_taps=None) -> None:
        """Load the linear stage: ``coefficients [linear_inputs, linear_taps]`` (correlation
        lags ``-(L-1)/2 .. (L-1)/2``) after the fixed ``filter_taps [linear_filter_size]``
        (correlation taps; default: none).  Stored as their convolution in ``linear_fir``."""
        if not self.linear_taps:
            raise GwtwinError("this model has no linear stage (linear_taps=0)")
        coef = torch.as_tensor(coefficients, dtype=torch.float64)
        if tuple(coef.shape) != (self.linear_inputs, self.linear_taps):
            raise GwtwinError(
                f"expected linear-stage coefficients of shape ({self.linear_inputs}, "
                f"{self.linear_taps}), found {tuple(coef.shape)}"
            )
        if filter_taps is None:
            if self.linear_filter_size:
                raise GwtwinError(
                    f"this model's linear stage expects a fixed filter of "
                    f"{self.linear_filter_size} taps"
                )
            combined = coef
        else:
            taps = torch.as_tensor(filter_taps, dtype=torch.float64).flatten()
            if taps.numel() != self.linear_filter_size:
                raise GwtwinError(
                    f"expected a fixed filter of {self.linear_filter_size} taps, found "
                    f"{taps.numel()}"
                )
            # correlation with taps then with coef = correlation with their full convolution
            n = taps.numel() + self.linear_taps - 1
            combined = torch.fft.irfft(torch.fft.rfft(coef, n) * torch.fft.rfft(taps, n), n)
        if not bool(torch.isfinite(combined).all()):
            raise GwtwinError("linear-stage taps must be finite")
        with torch.no_grad():
            self.linear_fir.copy_(combined.to(self.linear_fir.dtype))

    # -- forward -------------------------------------------------------------------------------
    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise GwtwinError(
                f"expected witness features [batch, {self.in_channels}, time], found shape "
                f"{tuple(x.shape)}"
            )
        if x.shape[-1] <= 2 * self.margin:
            raise GwtwinError(
                f"expected more than {2 * self.margin} samples "
                f"({2 * self.margin / self.sample_rate:g} s at {self.sample_rate:g} Hz), "
                f"found {x.shape[-1]}"
            )

    def _context(self, h: torch.Tensor) -> torch.Tensor:
        c = self.ctx_in(h)
        skips = []
        for down in self.down:
            skips.append(c)
            c = down(c)
        c = self.bottom(c)
        for up, skip in zip(self.up, reversed(skips), strict=True):
            c = F.interpolate(c, size=skip.shape[-1], mode="linear", align_corners=False)
            c = up(c + skip)
        return self.film(c)

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """Prediction over the whole input, ``[batch, time]`` (its edges see zero padding)."""
        self._check(x)
        x = self.gate_inputs(x)
        n_t = x.shape[-1]
        linear = None
        taps = getattr(self, "linear_fir", None)
        if taps is not None and taps.numel():  # unfitted (zero) taps add exact zeros
            linear = fft_conv_same(self.linear_features(x), taps.to(x.dtype)).sum(1)
        keep = getattr(self, "network_features", None)
        if keep is not None and keep.numel() != self.in_channels:
            x = x.index_select(1, keep)
        pad = (-n_t) % self.block_size
        if pad:
            x = F.pad(x, (0, pad))
        if self.prod_a is not None:
            x = torch.cat([x, self.prod_a(x) * self.prod_b(x)], dim=1)
        h = self.encode(x)
        for block in self.local:
            h = block(h)
        if self.context_levels:
            scale, shift = self._context(h).chunk(2, dim=1)
            h = h * (1.0 + scale) + shift
        y = fft_conv_same(self.decode(h), self.fir).sum(1)[..., :n_t]
        return y if linear is None else y + linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Whitened strain noise over the central part: ``[batch, time - 2 margin]`` (for a
        training window, ``[batch, target_size]``)."""
        y = self.forward_full(x)
        return y[..., self.margin : y.shape[-1] - self.margin]
