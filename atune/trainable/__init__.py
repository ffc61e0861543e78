"""Trainables: the class API and the wrappers ``with_parameters`` / ``with_resources``."""

from __future__ import annotations

from atune.trainable.trainable import Trainable
from atune.trainable.util import inspect_trainable, with_parameters, with_resources

__all__ = ["Trainable", "inspect_trainable", "with_parameters", "with_resources"]
