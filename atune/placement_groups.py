"""``PlacementGroupFactory``: a trial that runs its own distributed workers (Ray Tune's name).

A trial's resource request can be a list of bundles instead of one dict. Each trial then
gets a Ray placement group of those bundles: the trainable runs in the first bundle,
and the tasks and actors it starts itself are placed in the group (Ray's
``placement_group_capture_child_tasks``), so they take the other bundles, on the
nodes the strategy chose. The group is removed when the trial's worker ends.

    >>> import atune
    >>> pgf = atune.PlacementGroupFactory([{"CPU": 1}, {"CPU": 2}, {"CPU": 2}], strategy="SPREAD")
    >>> pgf.required_resources
    {'CPU': 5.0}
    >>> trainable = atune.with_resources(train, pgf)                      # doctest: +SKIP

A first bundle that is empty (``{}``) runs the trainable without reserving anything
for it (``head_bundle_is_empty``), as in Ray Tune.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from atune.errors import ConfigError, ConfigTypeError

__all__ = ["STRATEGIES", "PlacementGroupFactory"]

#: Ray's placement strategies.
STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


class PlacementGroupFactory:
    """Bundles of resources for one trial, placed together by ``strategy``.

    Args:
        bundles: A list of resource dicts, e.g. ``[{"CPU": 1}, {"CPU": 1, "GPU": 1}]``
            (``cpu``/``gpu`` are accepted for ``CPU``/``GPU``). The trainable runs in the
            first one.
        strategy: ``"PACK"`` (default: as few nodes as possible), ``"SPREAD"`` (as many
            as possible), ``"STRICT_PACK"`` (one node) or ``"STRICT_SPREAD"`` (one node
            per bundle).
    """

    def __init__(
        self,
        bundles: Sequence[Mapping[str, float]],
        strategy: str = "PACK",
        *args: Any,
        **kwargs: Any,
    ) -> None:
        from atune.trainable.util import normalize_resources

        if args or kwargs:
            raise ConfigTypeError(
                "PlacementGroupFactory takes bundles and strategy only, got extra "
                f"arguments {args or ''}{kwargs or ''}"
            )
        if isinstance(bundles, Mapping) or not isinstance(bundles, Sequence) or not bundles:
            raise ConfigTypeError(
                "`bundles` must be a non-empty list of resource dicts, e.g. "
                f"[{{'CPU': 1}}, {{'CPU': 2}}], got {bundles!r}"
            )
        if strategy not in STRATEGIES:
            raise ConfigError(
                f"`strategy` must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
            )
        normalized: list[dict[str, float]] = []
        for i, bundle in enumerate(bundles):
            if not isinstance(bundle, Mapping):
                raise ConfigTypeError(f"bundle {i} must be a dict of resources, got {bundle!r}")
            clean = {k: v for k, v in normalize_resources(bundle).items() if v > 0}
            if not clean and i > 0:
                raise ConfigError(
                    f"bundle {i} asks for no resources ({dict(bundle)}); only the first "
                    "bundle may be empty (the trainable then reserves nothing)"
                )
            normalized.append(clean)
        self.head_bundle_is_empty = not normalized[0]
        self._bundles = normalized
        self.strategy = strategy

    @property
    def bundles(self) -> list[dict[str, float]]:
        """The bundles as Ray receives them (an empty head bundle left out)."""
        return [
            dict(b) for b in (self._bundles[1:] if self.head_bundle_is_empty else self._bundles)
        ]

    @property
    def head_bundle(self) -> dict[str, float]:
        """What the trainable's own worker uses."""
        return dict(self._bundles[0])

    @property
    def required_resources(self) -> dict[str, float]:
        """The sum of all bundles: what the trial takes from the cluster."""
        total: dict[str, float] = {}
        for bundle in self._bundles:
            for k, v in bundle.items():
                total[k] = total.get(k, 0.0) + v
        total.setdefault("CPU", 0.0)
        return total

    def key(self) -> tuple[Any, ...]:
        """Equal for factories that make the same placement group."""
        return (self.strategy, tuple(tuple(sorted(b.items())) for b in self._bundles))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroupFactory) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return f"PlacementGroupFactory({self._bundles!r}, strategy={self.strategy!r})"
