"""Integration tests run on one real local Ray, shared by the whole session."""

from __future__ import annotations

import pytest
import ray

#: Logical CPUs of the test cluster: 4 one-CPU trials run at once on any machine.
NUM_CPUS = 4


@pytest.fixture(scope="session", autouse=True)
def ray_cluster():
    ray.init(
        num_cpus=NUM_CPUS,
        resources={"special": 1},
        include_dashboard=False,
        ignore_reinit_error=True,
        configure_logging=False,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


@pytest.fixture
def storage(tmp_path):
    """A fresh storage_path for one test."""
    return str(tmp_path / "results")
