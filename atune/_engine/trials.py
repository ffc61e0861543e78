"""New trials: their names, tags and directories, and why one could never start."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from typing import Any

from atune._engine.spec import MAX_LEN_IDENTIFIER, ExperimentSpec
from atune._trial import Trial
from atune.errors import ConfigError
from atune.placement_groups import PlacementGroupFactory
from atune.search.variant_generator import flatten_suggested, format_vars
from atune.trainable.util import normalize_resources, resource_request

__all__ = ["make_trial", "unschedulable_error"]


def make_trial(spec: ExperimentSpec, index: int, trial_id: str, config: dict[str, Any]) -> Trial:
    """The PENDING trial number ``index`` of the experiment, running ``config``."""
    evaluated = flatten_suggested(spec.param_space, config)
    request = resource_request(spec.trainable, config, None)
    tag = format_vars(evaluated)
    trial = Trial(
        trial_id=trial_id,
        trainable_name=spec.trainable.name,
        config=config,
        experiment_tag=f"{index}_{tag}" if tag else str(index),
        evaluated_params=evaluated,
        resources=normalize_resources(request),
    )
    if isinstance(request, PlacementGroupFactory):
        trial.placement_group_factory = request
    if spec.trial_name_creator is not None:
        trial.custom_name = str(spec.trial_name_creator(trial))
    if spec.trial_dirname_creator is not None:
        dirname = str(spec.trial_dirname_creator(trial))
        if not dirname or os.sep in dirname or dirname in (".", ".."):
            raise ConfigError(
                f"`trial_dirname_creator` must return a directory name, not a path, got {dirname!r}"
            )
    else:
        date = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        dirname = f"{trial.name}_{trial.experiment_tag[:MAX_LEN_IDENTIFIER]}_{date}"
    trial.local_path = os.path.join(spec.experiment_path, dirname)
    return trial


def unschedulable_error(trial: Trial, total: Mapping[str, float], hint: str) -> ConfigError:
    """The error for a trial that asks for more than the cluster has in total."""
    have = {k: total.get(k, 0.0) for k in trial.resources}
    return ConfigError(
        f"trial {trial.name} asks for resources {trial.resources}, but the executor has "
        f"{have} in total, so it can never start. Ask for less with "
        f"atune.with_resources(trainable, {{...}}), or {hint}."
    )
