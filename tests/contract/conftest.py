"""The executor contract: engine behaviour every executor must show, run on each of them.

Every test takes the ``backend`` fixture, parametrized over the executors: ``"local"``
runs the trials in this process, without Ray; ``"ray"`` runs them in actors of one Ray
started for the whole session, as ``tests/integration`` does. Both offer the same
logical resources, so a test asserts the same outcome on either.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

import atune as tune
from atune.executors import LocalExecutor

#: Logical CPUs of either backend: 4 one-CPU trials run at once on any machine.
NUM_CPUS = 4
#: A custom resource, to bound concurrency by something else than CPUs.
CUSTOM = {"special": 1}


@pytest.fixture(scope="session")
def ray_session():
    """One Ray for every "ray" test of the session (started only if one runs)."""
    import ray

    ray.init(
        num_cpus=NUM_CPUS,
        resources=CUSTOM,
        include_dashboard=False,
        ignore_reinit_error=True,
        configure_logging=False,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


@dataclasses.dataclass(frozen=True)
class Backend:
    """One executor under test, and what differs by design between executors."""

    name: str

    @property
    def local(self) -> bool:
        return self.name == "local"

    def executor(self) -> Any:
        """A fresh executor (a name, for Ray) for ``TuneConfig(executor=...)``."""
        if self.local:
            return LocalExecutor({"CPU": NUM_CPUS, **CUSTOM})
        return "ray"

    def in_driver_process(self, pid: int) -> bool:
        """Whether a trial that reported ``pid`` ran in the driver's process."""
        return pid == os.getpid()


@pytest.fixture(params=["local", "ray"])
def backend(request) -> Backend:
    if request.param == "ray":
        request.getfixturevalue("ray_session")
    return Backend(request.param)


@pytest.fixture
def storage(tmp_path) -> str:
    """A fresh storage_path for one test."""
    return str(tmp_path / "results")


@pytest.fixture
def tuner(backend, storage):
    """``tuner(trainable, param_space=..., tune_config=..., **run_config_kwargs)``.

    A Tuner on the backend under test, writing to this test's storage, silent.
    """

    def make(trainable, *, param_space=None, tune_config=None, **run_kwargs):
        run_kwargs.setdefault("verbose", 0)
        tc = dataclasses.replace(tune_config or tune.TuneConfig(), executor=backend.executor())
        return tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tc,
            run_config=tune.RunConfig(storage_path=storage, **run_kwargs),
        )

    return make
