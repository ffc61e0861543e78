"""ExperimentState without a loop or Ray: resources balance, status moves, checkpoints, ids."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atune._engine import events as E
from atune._engine.state import (
    CheckpointBook,
    ExperimentState,
    InvalidTransition,
    ResourcePool,
    TrialTable,
)
from atune._trial import Trial
from atune.checkpoint import Checkpoint
from atune.config import CheckpointConfig

PENDING, RUNNING, PAUSED = Trial.PENDING, Trial.RUNNING, Trial.PAUSED
TERMINATED, ERROR = Trial.TERMINATED, Trial.ERROR

#: Every status move the lifecycle allows, and the event that makes it.
ALLOWED: dict[type[E.Event], dict[str, str]] = {
    E.TrialStarted: {PENDING: RUNNING},
    E.TrialResumed: {PAUSED: RUNNING},
    E.TrialPaused: {RUNNING: PAUSED},
    E.TrialRequeued: {RUNNING: PENDING},
    E.TrialCompleted: {PENDING: TERMINATED, RUNNING: TERMINATED, PAUSED: TERMINATED},
    E.TrialErrored: {PENDING: ERROR, RUNNING: ERROR, PAUSED: ERROR},
}
ALLOWED_MOVES = {(a, b) for moves in ALLOWED.values() for a, b in moves.items()}

PREFIX = "abcde"
MAX_TRIALS = 6


def trial_id(k: int) -> str:
    return f"{PREFIX}_{k:05d}"


def new_trial(state: ExperimentState) -> Trial:
    index, tid = state.table.new_id()
    return Trial(trial_id=tid, trainable_name="train", config={"index": index})


# -- generating event sequences -------------------------------------------------------

# Multiples of 1/4: sums are exact in any order, so "balanced" means equal, not close.
amounts = st.integers(0, 8).map(lambda n: n / 4)
requests = st.dictionaries(st.sampled_from(["CPU", "GPU", "custom"]), amounts, max_size=3)
bad_requests = st.sampled_from([{"CPU": -1.0}, {"CPU": 1.0, "GPU": -0.25}, {"CPU": math.nan}])


@dataclass(frozen=True)
class Step:
    """Add the next trial, or apply one event to trial number ``k`` (maybe not added)."""

    kind: str
    k: int = 0
    resources: tuple[tuple[str, float], ...] = ()

    def event(self, n: int) -> E.Event:
        tid = trial_id(self.k)
        resources = dict(self.resources)
        kinds = {
            "start": lambda: E.TrialStarted(trial_id=tid, resources=resources),
            "resume": lambda: E.TrialResumed(trial_id=tid, resources=resources),
            "pause": lambda: E.TrialPaused(trial_id=tid),
            "requeue": lambda: E.TrialRequeued(trial_id=tid),
            "complete": lambda: E.TrialCompleted(trial_id=tid),
            "error": lambda: E.TrialErrored(trial_id=tid, error=RuntimeError("boom")),
            "result": lambda: E.ResultRecorded(trial_id=tid, result={"n": n}),
            "checkpoint": lambda: E.CheckpointRecorded(
                trial_id=tid, path=f"/ckpt/{tid}/{n}", iteration=n, time_total_s=1.0, result={}
            ),
            "release": lambda: E.ResourcesReleased(trial_id=tid),
            "ended": lambda: E.ExperimentEnded(),
        }
        return kinds[self.kind]()


trial_numbers = st.integers(0, MAX_TRIALS)  # MAX_TRIALS itself is never added
steps = st.one_of(
    st.just(Step("add")),
    st.builds(
        Step,
        st.sampled_from(["start", "resume"]),
        trial_numbers,
        st.one_of(requests, requests, requests, bad_requests).map(lambda d: tuple(d.items())),
    ),
    st.builds(
        Step,
        st.sampled_from(
            ["pause", "requeue", "complete", "error", "result", "checkpoint", "release"]
        ),
        trial_numbers,
    ),
    st.just(Step("ended")),
)
step_lists = st.lists(steps, max_size=60).map(lambda s: [Step("add"), *s])


@dataclass(frozen=True)
class Snapshot:
    """Everything apply() may change, as comparable values."""

    trials: tuple[tuple[object, ...], ...]
    used: dict[str, float]
    live: int
    holdings: tuple[bool, ...]
    kept: tuple[object, ...]
    next_index: int

    @classmethod
    def of(cls, state: ExperimentState) -> Snapshot:
        ids = [t.trial_id for t in state.trials]
        return cls(
            trials=tuple(
                (
                    t.trial_id,
                    t.status,
                    t.num_results,
                    dict(t.last_result),
                    t.checkpoint,
                    list(t.checkpoints),
                    t.error,
                )
                for t in state.trials
            ),
            used=state.pool.used,
            live=state.pool.live,
            holdings=tuple(state.pool.holds(tid) for tid in ids),
            kept=tuple(state.book.kept(tid) for tid in ids),
            next_index=state.table.next_index,
        )

    @property
    def order(self) -> list[str]:
        return [str(t[0]) for t in self.trials]

    def status(self, tid: str) -> str | None:
        return next((str(t[1]) for t in self.trials if t[0] == tid), None)

    def holds(self, tid: str) -> bool:
        return any(h for t, h in zip(self.trials, self.holdings) if t[0] == tid)


@dataclass
class Outcome:
    event: E.Event
    before: Snapshot
    after: Snapshot
    raised: InvalidTransition | None
    state: ExperimentState

    @property
    def trial_id(self) -> str:
        return getattr(self.event, "trial_id", "")


def play(step_list: list[Step]) -> Iterator[Outcome]:
    """Apply the steps to a fresh state, yielding what each event did."""
    state = ExperimentState(total_resources={"CPU": 4.0, "GPU": 1.0}, id_prefix=PREFIX)
    for n, step in enumerate(step_list):
        if step.kind == "add":
            if len(state.trials) < MAX_TRIALS:
                state.add_trial(new_trial(state))
            continue
        event = step.event(n)
        before = Snapshot.of(state)
        raised = None
        try:
            state.apply(event)
        except InvalidTransition as exc:
            raised = exc
        yield Outcome(event, before, Snapshot.of(state), raised, state)


def valid_request(event: E.Event) -> bool:
    return all(v >= 0 for v in getattr(event, "resources", {}).values())  # NaN is not


def is_invalid(event: E.Event, before: Snapshot) -> bool:
    """The rules, written independently of state.py."""
    if not isinstance(event, E.TrialEvent):
        return False  # ExperimentEnded: nothing to check
    status = before.status(event.trial_id)
    if status is None:
        return True  # an unknown trial
    if isinstance(event, (E.CheckpointRecorded, E.ResourcesReleased)):
        return False  # releasing twice is a no-op
    if isinstance(event, E.ResultRecorded):
        return status != RUNNING
    if isinstance(event, E.TrialStarted) and before.holds(event.trial_id):
        return True  # its last worker has not given its resources back yet
    return status not in ALLOWED[type(event)] or not valid_request(event)


# -- (a) the resource pool stays balanced ---------------------------------------------


@given(step_lists)
def test_resources_in_use_are_exactly_the_requests_of_the_trials_not_yet_released(
    step_list: list[Step],
) -> None:
    # A trial holds what its last start asked for, from TrialStarted/TrialResumed
    # until ResourcesReleased (its worker stopped), whatever its status meanwhile.
    held: dict[str, dict[str, float]] = {}
    for out in play(step_list):
        event, state = out.event, out.state
        if out.raised is None and isinstance(event, E.TrialStarted):  # or TrialResumed
            held[event.trial_id] = dict(event.resources)
        if out.raised is None and isinstance(event, E.ResourcesReleased):
            held.pop(event.trial_id, None)
        expected: dict[str, float] = {}
        for request in held.values():
            for key, value in request.items():
                expected[key] = expected.get(key, 0.0) + value

        used = state.pool.used
        assert used == expected
        assert all(value >= 0 for value in used.values())
        assert state.pool.live == len(held)
        assert [state.pool.holds(t.trial_id) for t in state.trials] == [
            t.trial_id in held for t in state.trials
        ]
        if not held:
            assert all(value == 0 for value in used.values())


@given(step_lists)
def test_a_trial_that_runs_holds_resources_unless_released(step_list: list[Step]) -> None:
    released: set[str] = set()  # released since its last start
    for out in play(step_list):
        if out.raised is None and isinstance(out.event, E.TrialStarted):
            released.discard(out.event.trial_id)
        if out.raised is None and isinstance(out.event, E.ResourcesReleased):
            released.add(out.event.trial_id)
        for trial in out.state.trials:
            if trial.status == RUNNING and trial.trial_id not in released:
                assert out.state.pool.holds(trial.trial_id)


@given(step_lists)
def test_an_invalid_event_raises_invalid_transition_and_changes_nothing(
    step_list: list[Step],
) -> None:
    for out in play(step_list):
        invalid = is_invalid(out.event, out.before)
        assert (out.raised is not None) == invalid, out.event
        if invalid:
            assert out.after == out.before


def test_an_event_for_an_unknown_trial_raises_invalid_transition() -> None:
    state = ExperimentState(id_prefix=PREFIX)
    with pytest.raises(InvalidTransition, match="abcde_00042"):
        state.apply(E.TrialStarted(trial_id=trial_id(42), resources={"CPU": 1.0}))


def test_a_negative_resource_request_is_refused() -> None:
    pool = ResourcePool({"CPU": 2.0})
    with pytest.raises(InvalidTransition, match="CPU"):
        pool.acquire("abcde_00000", {"CPU": -1.0})
    assert pool.used == {}
    assert not pool.holds("abcde_00000")


def test_resources_are_given_back_once_whatever_the_request_became() -> None:
    state = ExperimentState(total_resources={"CPU": 2.0}, id_prefix=PREFIX)
    trial = new_trial(state)
    state.add_trial(trial)
    state.apply(E.TrialStarted(trial_id=trial.trial_id, resources={"CPU": 1.5}))
    trial.resources = {"CPU": 0.5}  # a scheduler changes the request meanwhile
    assert not state.pool.fits({"CPU": 1.0})

    state.apply(E.TrialPaused(trial_id=trial.trial_id))
    assert state.pool.used == {"CPU": 1.5}, "held until its worker stops"
    state.apply(E.ResourcesReleased(trial_id=trial.trial_id))
    state.apply(E.ResourcesReleased(trial_id=trial.trial_id))  # again: a no-op

    assert state.pool.used == {}
    assert state.pool.fits({"CPU": 2.0})


def test_a_trial_still_holding_resources_cannot_start_again() -> None:
    state = ExperimentState(id_prefix=PREFIX)
    trial = new_trial(state)
    state.add_trial(trial)
    state.apply(E.TrialStarted(trial_id=trial.trial_id, resources={"CPU": 1.0}))
    state.apply(E.TrialRequeued(trial_id=trial.trial_id))  # its worker still stopping

    with pytest.raises(InvalidTransition, match="already holds"):
        state.apply(E.TrialStarted(trial_id=trial.trial_id, resources={"CPU": 1.0}))
    assert trial.status == PENDING
    state.apply(E.ResourcesReleased(trial_id=trial.trial_id))
    state.apply(E.TrialStarted(trial_id=trial.trial_id, resources={"CPU": 1.0}))
    assert trial.status == RUNNING


# -- (b) status moves only along the lifecycle ----------------------------------------


@given(step_lists)
def test_a_trial_status_moves_only_along_the_allowed_transitions(step_list: list[Step]) -> None:
    for out in play(step_list):
        for tid in out.after.order:
            old, new = out.before.status(tid), out.after.status(tid)
            if old is None or old == new:
                continue
            assert (old, new) in ALLOWED_MOVES
            assert old not in (TERMINATED, ERROR), "TERMINATED and ERROR are final"
            assert out.raised is None
            assert tid == out.trial_id
            assert ALLOWED.get(type(out.event), {}).get(old) == new


@given(step_lists)
def test_every_allowed_transition_is_accepted(step_list: list[Step]) -> None:
    for out in play(step_list):
        moves = ALLOWED.get(type(out.event), {})
        old = out.before.status(out.trial_id)
        if old in moves and not is_invalid(out.event, out.before):
            assert out.raised is None
            assert out.after.status(out.trial_id) == moves[old]


def test_a_new_trial_must_be_pending() -> None:
    state = ExperimentState(id_prefix=PREFIX)
    trial = new_trial(state)
    trial.status = RUNNING
    with pytest.raises(InvalidTransition, match="must be PENDING"):
        state.add_trial(trial)
    assert state.trials == []


def test_add_trial_returns_the_trial_added_event() -> None:
    state = ExperimentState(id_prefix=PREFIX)
    trial = new_trial(state)
    event = state.add_trial(trial)
    assert (event.kind, event.trial_id, event.config) == (
        "trial_added",
        trial.trial_id,
        {"index": 0},
    )
    assert state.apply(event) == []


# -- (c) the checkpoint book ----------------------------------------------------------


@dataclass(frozen=True)
class BookOp:
    kind: str  # "record", "pin" or "unpin"
    trial: int = 0
    score: float | None = None  # None: the result has no score field
    target: int = 0  # pin/unpin: which recorded path (modulo), or the next one


book_ops = st.lists(
    st.one_of(
        st.builds(
            BookOp,
            st.just("record"),
            st.integers(0, 2),
            st.one_of(
                st.none(),
                st.just(math.nan),
                st.integers(-3, 3).map(float),  # small range: ties happen
            ),
        ),
        st.builds(BookOp, st.sampled_from(["pin", "unpin"]), target=st.integers(0, 40)),
    ),
    max_size=60,
)
book_configs = st.builds(
    CheckpointConfig,
    num_to_keep=st.one_of(st.none(), st.integers(1, 4)),
    checkpoint_score_attribute=st.sampled_from([None, "score"]),
    checkpoint_score_order=st.sampled_from(["max", "min"]),
)


def rank(score: float | None, order: str) -> float:
    """How good a checkpoint is, bigger is better; no score or NaN ranks last."""
    if score is None or math.isnan(score):
        return -math.inf
    return score if order == "max" else -score


@given(book_configs, book_ops)
def test_checkpoint_book_keeps_the_latest_and_the_best_and_returns_each_drop_once(
    config: CheckpointConfig, ops: list[BookOp]
) -> None:
    book = CheckpointBook(config)
    recorded: dict[int, list[tuple[str, float | None]]] = {0: [], 1: [], 2: []}
    all_paths: list[str] = []
    returned: Counter[str] = Counter()
    pins: Counter[str] = Counter()

    def path_for(target: int) -> str:
        if target < len(all_paths):
            return all_paths[target]
        return f"/ckpt/future/{target}"  # pinned before it is recorded

    for n, op in enumerate(ops):
        if op.kind == "record":
            path = f"/ckpt/{op.trial}/{n}"
            metrics = {"training_iteration": n} if op.score is None else {"score": op.score}
            gone = book.record(f"t{op.trial}", Checkpoint(path), metrics)
            recorded[op.trial].append((path, op.score))
            all_paths.append(path)
        elif op.kind == "pin":
            path = path_for(op.target)
            book.pin(path)
            pins[path] += 1
            gone = []
        else:
            path = path_for(op.target)
            gone = book.unpin(path)
            if pins[path]:
                pins[path] -= 1
        for path in gone:
            assert not pins[path], f"{path} is pinned, it must not be deleted"
        returned.update(gone)

        for t, history in recorded.items():
            kept = [ckpt.path for ckpt, _ in book.kept(f"t{t}")]
            if not history:
                assert kept == []
                continue
            n_keep = config.num_to_keep or len(history)
            assert kept[-1] == history[-1][0], "the latest is always kept"
            assert book.latest(f"t{t}") == Checkpoint(history[-1][0])
            assert kept == [p for p, _ in history if p in kept], "oldest first"
            if config.checkpoint_score_attribute is None:
                assert kept == [p for p, _ in history[-n_keep:]], "the latest n"
            else:
                # Ray Tune's rule: the n best (later wins a tie), plus the latest.
                order = config.checkpoint_score_order
                ranked = sorted(
                    range(len(history)),
                    key=lambda i: (rank(history[i][1], order), i),
                    reverse=True,
                )
                expected = {history[i][0] for i in ranked[:n_keep]} | {history[-1][0]}
                assert set(kept) == expected
                best = [c.path for c, _ in book.best(f"t{t}")]
                assert sorted(best) == sorted(kept)
                assert [rank(dict(history)[p], order) for p in best] == sorted(
                    rank(dict(history)[p], order) for p in best
                ), "best_checkpoints: worst first"

    # Once nothing is pinned, every path dropped from the book was returned exactly once.
    for path, count in list(pins.items()):
        for _ in range(count):
            returned.update(book.unpin(path))
    kept_now = {c.path for t in recorded for c, _ in book.kept(f"t{t}")}
    assert set(returned) == set(all_paths) - kept_now
    assert all(count == 1 for count in returned.values())


@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 2)), max_size=40),
    st.integers(1, 3),
)
def test_checkpoint_book_never_returns_a_path_it_still_keeps(
    records: list[tuple[int, int]], num_to_keep: int
) -> None:
    # Paths repeat: a trainable that saves into the same directory twice, or a PBT
    # exploit that copies into a directory name the trial already used.
    book = CheckpointBook(CheckpointConfig(num_to_keep=num_to_keep))
    for trial, name in records:
        path = f"/ckpt/t{trial}/checkpoint_{name}"
        gone = book.record(f"t{trial}", Checkpoint(path), {})
        kept = [c.path for c, _ in book.kept(f"t{trial}")]
        assert book.latest(f"t{trial}") == Checkpoint(path)
        assert len(kept) == len(set(kept)) <= num_to_keep
        assert not set(gone) & set(kept)


def test_a_dropped_pinned_checkpoint_is_returned_when_its_last_pin_goes() -> None:
    book = CheckpointBook(CheckpointConfig(num_to_keep=1))
    book.record("t", Checkpoint("/c/1"), {})
    book.pin("/c/1")
    book.pin("/c/1")
    assert book.record("t", Checkpoint("/c/2"), {}) == []
    assert book.unpin("/c/1") == []
    assert book.unpin("/c/1") == ["/c/1"]
    assert book.unpin("/c/1") == []


def test_an_unpinned_kept_checkpoint_is_not_returned() -> None:
    book = CheckpointBook(CheckpointConfig(num_to_keep=2))
    book.record("t", Checkpoint("/c/1"), {})
    book.pin("/c/1")
    assert book.unpin("/c/1") == []
    book.record("t", Checkpoint("/c/2"), {})
    assert book.record("t", Checkpoint("/c/3"), {}) == ["/c/1"]


def test_checkpoint_recorded_updates_the_trial_and_the_book_metadata() -> None:
    state = ExperimentState(checkpoint_config=CheckpointConfig(num_to_keep=1), id_prefix=PREFIX)
    trial = new_trial(state)
    state.add_trial(trial)
    for it in (1, 2):
        dropped = state.apply(
            E.CheckpointRecorded(
                trial_id=trial.trial_id,
                path=f"/c/{it}",
                iteration=it,
                time_total_s=it * 10.0,
                result={"loss": 1.0 / it},
            )
        )
    assert dropped == ["/c/1"]
    assert trial.checkpoint == Checkpoint("/c/2")
    assert trial.checkpoints == [(Checkpoint("/c/2"), {"loss": 0.5})]
    assert state.book.meta("/c/2") == (2, 20.0)
    assert state.book.meta("/c/1") == (0, 0.0)


# -- (d) the trial table --------------------------------------------------------------

ID_SHAPE = re.compile(r"^[0-9a-f]{5}_\d{5}$")
hex_prefixes = st.text("0123456789abcdef", min_size=5, max_size=5)


@given(st.one_of(st.none(), hex_prefixes), st.integers(1, 300))
def test_trial_ids_have_ray_tunes_shape_and_are_never_reused(prefix: str | None, n: int) -> None:
    table = TrialTable(prefix)
    ids = [table.new_id() for _ in range(n)]
    assert [index for index, _ in ids] == list(range(n))
    assert all(ID_SHAPE.match(tid) for _, tid in ids)
    assert len({tid for _, tid in ids}) == n
    if prefix is not None:
        assert all(tid.startswith(prefix + "_") for _, tid in ids)


@given(hex_prefixes, st.integers(0, 50), st.integers(0, 50), st.integers(1, 50))
def test_a_table_with_the_same_prefix_and_next_index_continues_the_numbering(
    prefix: str, start: int, first: int, second: int
) -> None:
    table = TrialTable(prefix, next_index=start)
    before = [table.new_id()[1] for _ in range(first)]
    restored = TrialTable(table.id_prefix, next_index=table.next_index)
    after = [restored.new_id()[1] for _ in range(second)]

    assert after[0] == f"{prefix}_{start + first:05d}"
    assert len(set(before) | set(after)) == first + second
    assert restored.next_index == start + first + second


def test_an_id_given_out_is_not_given_again_even_if_its_trial_is_removed() -> None:
    table = TrialTable(PREFIX)
    _, tid = table.new_id()
    trial = Trial(trial_id=tid, trainable_name="train", config={})
    table.add(trial)
    table.remove(trial)
    assert table.new_id()[1] != tid


def test_adding_a_trial_id_twice_is_refused() -> None:
    table = TrialTable(PREFIX)
    table.add(Trial(trial_id=trial_id(0), trainable_name="train", config={}))
    with pytest.raises(InvalidTransition, match="added twice"):
        table.add(Trial(trial_id=trial_id(0), trainable_name="train", config={}))
    assert len(table) == 1


def test_requeue_moves_the_trial_to_the_end_of_the_table() -> None:
    state = ExperimentState(id_prefix=PREFIX)
    trials = [new_trial(state) for _ in range(3)]
    for trial in trials:
        state.add_trial(trial)
    first = trials[0]
    state.apply(E.TrialStarted(trial_id=first.trial_id, resources={"CPU": 1.0}))
    state.apply(E.TrialRequeued(trial_id=first.trial_id))

    assert state.trials == [trials[1], trials[2], first]
    assert first.status == PENDING
    assert state.table.with_status(PENDING) == [trials[1], trials[2], first]


@given(step_lists)
def test_the_table_order_changes_only_by_adding_or_requeueing(step_list: list[Step]) -> None:
    for out in play(step_list):
        if out.raised is None and isinstance(out.event, E.TrialRequeued):
            tid = out.event.trial_id
            assert out.after.order == [t for t in out.before.order if t != tid] + [tid]
        else:
            assert out.after.order == out.before.order


def test_a_path_two_trials_keep_is_returned_only_when_neither_keeps_it() -> None:
    book = CheckpointBook(CheckpointConfig(num_to_keep=1))
    book.record("a", Checkpoint("/shared"), {})
    book.record("b", Checkpoint("/shared"), {})
    assert book.record("a", Checkpoint("/a/2"), {}) == []
    assert book.record("b", Checkpoint("/b/2"), {}) == ["/shared"]


def test_the_best_n_are_kept_by_score_plus_the_latest_as_in_ray_tune() -> None:
    # Ray Tune's _CheckpointManager: keep the num_to_keep best, and the latest too.
    book = CheckpointBook(
        CheckpointConfig(
            num_to_keep=2, checkpoint_score_attribute="score", checkpoint_score_order="max"
        )
    )
    dropped: list[str] = []
    for score in (3, 9, 1, 7, 5, 2):
        dropped += book.record("t", Checkpoint(f"/c/{score}"), {"score": score})
    assert [c.path for c, _ in book.kept("t")] == ["/c/9", "/c/7", "/c/2"]  # oldest first
    assert [r["score"] for _, r in book.best("t")] == [2, 7, 9]  # worst first, best last
    assert book.latest("t") == Checkpoint("/c/2")
    assert sorted(dropped) == ["/c/1", "/c/3", "/c/5"]


def test_a_retry_rewinds_the_trial_to_the_checkpoint_it_continues_from():
    state = ExperimentState({"CPU": 1.0})
    trial = Trial(trial_id="abcde_00000", trainable_name="t", config={})
    state.add_trial(trial)
    state.apply(E.TrialStarted(trial_id=trial.trial_id, resources={"CPU": 1.0}))
    for i in range(1, 6):
        state.apply(E.ResultRecorded(trial_id=trial.trial_id, result={"training_iteration": i}))
        if i == 3:
            state.apply(
                E.CheckpointRecorded(
                    trial_id=trial.trial_id,
                    path="/x/checkpoint_000003",
                    iteration=3,
                    time_total_s=3.0,
                    result={"training_iteration": 3},
                )
            )
    assert trial.last_result["training_iteration"] == 5
    state.apply(E.TrialRetrying(trial_id=trial.trial_id))
    state.apply(
        E.TrialWorkerStarted(
            trial_id=trial.trial_id, restored=True, start_iteration=3, after_failure=True
        )
    )
    # What the failed attempt did past iteration 3 is no longer the trial's state.
    assert trial.num_results == 3 and trial.last_result == {"training_iteration": 3}
    state.apply(
        E.TrialWorkerStarted(trial_id=trial.trial_id, start_iteration=0, after_failure=True)
    )
    assert trial.num_results == 0 and trial.last_result == {}
