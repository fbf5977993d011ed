"""Network architectures, registered by name, and the :class:`TwinModel` wrapper.

- ``witness_td`` (:class:`WitnessTD`, the default): witness time series -> whitened strain noise.
- ``qimage_unet`` (:class:`QImageUNet`): witness Q-images -> strain Q-image (Glitchflow parity).

:func:`build_model` builds one by name from keyword arguments (a YAML mapping);
:class:`TwinModel` holds a trained network with the conditioning spec and window geometry it
needs, loads from the MLflow registry (``models:/name@alias``) and predicts strain noise from raw
witness data, refusing missing, reordered or wrongly sampled channels.
"""

from gwtwin.models.qimage_unet import QImageUNet
from gwtwin.models.registry import (
    available_models,
    build_model,
    model_config,
    model_parameters,
    register_model,
)
from gwtwin.models.twin import ModelSpecMismatchError, TwinModel, prediction_channel
from gwtwin.models.witness_td import WitnessTD

__all__ = [
    "ModelSpecMismatchError",
    "QImageUNet",
    "TwinModel",
    "WitnessTD",
    "available_models",
    "build_model",
    "model_config",
    "model_parameters",
    "prediction_channel",
    "register_model",
]
