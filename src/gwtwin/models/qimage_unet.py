"""The Q-spectrogram U-Net (``qimage_unet``, Glitchflow parity).

Input: witness Q-images ``[batch, channel, frequency, time]`` (normalised energies, 64 x 256 by
default); output: the strain Q-image ``[batch, frequency, time]`` (normalised energy, Softplus so
it is positive).  Residual blocks (conv-BN-LeakyReLU x 2 with a skip) at every level, max-pool
down, transposed convolutions up, and additive attention gates (Oktay et al. 2018) on the skip
connections: the decoder's coarser features decide which parts of the encoder's image pass, so
the network can keep the witness pixels that explain strain and drop the rest.

Differences from Glitchflow's network, on purpose: inputs go through ``log1p`` by default
(energies span 1 to 1e4; ``input_transform="none"`` restores the raw input), and it is small
(``base_channels=16``, ~0.5 M parameters rather than ~17 M) so that it trains on a CPU.
The image family can flag a glitch in strain and draw it, but never gives back a cleaned strain
time series; the time-domain family (``witness_td``) does.
"""

from __future__ import annotations

import torch
from torch import nn

from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.models.registry import register_model


class ResBlock2d(nn.Module):
    """``act(BN(conv(act(BN(conv(x))))) + skip(x))`` with 3x3 convolutions."""

    def __init__(self, cin: int, cout: int, slope: float = 0.01):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(slope),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class AttentionGate(nn.Module):
    """Additive attention gate: ``x * sigmoid(psi(act(W_x x + W_g g)))``.

    ``x`` is the encoder (skip) feature map, ``g`` the decoder's gating features at the same
    resolution.
    """

    def __init__(self, x_channels: int, g_channels: int, inter_channels: int):
        super().__init__()
        self.wx = nn.Conv2d(x_channels, inter_channels, 1, bias=False)
        self.wg = nn.Conv2d(g_channels, inter_channels, 1)
        self.psi = nn.Conv2d(inter_channels, 1, 1)
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        alpha = torch.sigmoid(self.psi(self.act(self.wx(x) + self.wg(g))))
        return x * alpha


@register_model("qimage_unet")
class QImageUNet(nn.Module):
    """U-Net with residual blocks and attention gates, witness Q-images to the strain Q-image.

    Parameters
    ----------
    in_channels : int
        Number of witness images (conditioned feature rows).
    base_channels : int
        Channels at the first level (doubled at each level down).
    depth : int
        Number of downsampling levels; image sizes must be divisible by ``2**depth``.
    input_transform : {"log1p", "none"}
        Applied to the input energies.
    slope : float
        Negative slope of the LeakyReLUs.
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int = 16,
        depth: int = 3,
        input_transform: str = "log1p",
        slope: float = 0.01,
    ):
        super().__init__()
        self.hparams_ = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        if input_transform not in ("log1p", "none"):
            raise ConfigError(
                f"input_transform must be 'log1p' or 'none', found {input_transform!r}"
            )
        if depth < 1 or base_channels < 1 or in_channels < 1:
            raise ConfigError(
                f"expected depth, base_channels and in_channels >= 1, found {depth}, "
                f"{base_channels}, {in_channels}"
            )
        self.in_channels = int(in_channels)
        self.depth = depth
        self.input_transform = input_transform
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.enc = nn.ModuleList()
        cin = in_channels
        for w in widths[:-1]:
            self.enc.append(ResBlock2d(cin, w, slope))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.bottom = ResBlock2d(widths[-2], widths[-1], slope)
        self.up = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.dec = nn.ModuleList()
        for lo, hi in zip(reversed(widths[:-1]), reversed(widths[1:]), strict=True):
            self.up.append(nn.ConvTranspose2d(hi, lo, 2, stride=2))
            self.gates.append(AttentionGate(lo, lo, max(lo // 2, 1)))
            self.dec.append(ResBlock2d(2 * lo, lo, slope))
        self.out = nn.Conv2d(widths[0], 1, 1)
        self.softplus = nn.Softplus()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, in_channels, F, T]`` -> ``[batch, F, T]`` (positive energies)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise GwtwinError(
                f"expected witness images [batch, {self.in_channels}, frequency, time], found "
                f"shape {tuple(x.shape)}"
            )
        block = 2**self.depth
        if x.shape[-1] % block or x.shape[-2] % block:
            raise GwtwinError(
                f"image size must be divisible by 2**depth = {block}, found "
                f"{x.shape[-2]} x {x.shape[-1]} (frequency x time)"
            )
        if self.input_transform == "log1p":
            x = torch.log1p(x.clamp_min(0))
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, gate, dec, skip in zip(self.up, self.gates, self.dec, reversed(skips), strict=True):
            x = up(x)
            x = dec(torch.cat([gate(skip, x), x], dim=1))
        return self.softplus(self.out(x))[:, 0]
