"""Shared test configuration."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, max_examples=100)
settings.load_profile("ci")

# Experiments written by tests never land in the user's home directory.
os.environ.setdefault("ATUNE_RESULTS_DIR", "/tmp/atune_test_results")

# CI installs every optional integration (see .ci/run) and sets this variable: there, a
# test skipped because a library is missing is a failure, not a silent gap.
_REQUIRE_ALL = os.environ.get("ATUNE_REQUIRE_ALL_INTEGRATIONS") == "1"
_skipped: list[str] = []


def pytest_runtest_logreport(report):  # type: ignore[no-untyped-def]
    if report.skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    if _REQUIRE_ALL and _skipped and exitstatus == 0:
        lines = "\n  ".join(_skipped)
        print(
            f"\nATUNE_REQUIRE_ALL_INTEGRATIONS=1, but {len(_skipped)} tests were skipped:\n  "
            f"{lines}\nInstall the missing libraries (see .ci/run)."
        )
        session.exitstatus = 1
