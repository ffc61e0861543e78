"""Shared test configuration."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, max_examples=100)
settings.load_profile("ci")

# Experiments written by tests never land in the user's home directory.
os.environ.setdefault("ATUNE_RESULTS_DIR", "/tmp/atune_test_results")
