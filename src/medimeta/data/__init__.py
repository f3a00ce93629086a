"""PyTorch datasets over the MedIMeta format."""

from medimeta.data.dataset import MedIMeta, TaskDescription
from medimeta.data.device import DeviceNormalize
from medimeta.data.multitask import MedIMetaMultiTask
from medimeta.data.pixels import NORMALIZATIONS

__all__ = ["NORMALIZATIONS", "DeviceNormalize", "MedIMeta", "MedIMetaMultiTask", "TaskDescription"]
