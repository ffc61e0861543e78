"""The public exception hierarchy.

Every error atune raises on purpose derives from :class:`AtuneError`. Errors about
user input also subclass the matching builtin (``ValueError``, ``TypeError``), so
``except ValueError`` keeps working for code written against Ray Tune.
"""

from __future__ import annotations

__all__ = [
    "AtuneError",
    "ClusterDiedError",
    "ConfigError",
    "ConfigTypeError",
    "PluginError",
    "SerializationError",
    "TrialError",
    "TrialWorkerDiedError",
    "TuneError",
    "UnknownTrialError",
]


class AtuneError(Exception):
    """Base class of every error raised by atune itself."""


# Ray Tune's name for the same thing: ``except tune.TuneError`` ports unchanged.
TuneError = AtuneError


class ConfigError(AtuneError, ValueError):
    """A parameter has a value atune cannot accept.

    The message names the parameter, the rule and the value, e.g.
    ``"`mode` must be 'min' or 'max', got 'maximize'"``.
    """


class ConfigTypeError(AtuneError, TypeError):
    """A parameter has the wrong type (e.g. a trainable that is not callable)."""


class SerializationError(AtuneError, TypeError):
    """An object that must travel to a Ray worker cannot be serialised."""


class TrialError(AtuneError):
    """A trial failed and its original exception could not be transported.

    When the user's exception can be pickled, :attr:`Result.error` is that exception
    itself; this class stands in for exceptions that cannot, and carries their type
    name, message and formatted traceback.
    """

    def __init__(self, message: str, *, exc_type: str = "", traceback: str = "") -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.traceback = traceback


class TrialWorkerDiedError(AtuneError):
    """The worker process (Ray actor) running a trial died or became unreachable."""


class ClusterDiedError(AtuneError):
    """The Ray cluster went away under a running experiment.

    Its head processes were killed, or its GCS server or this node's raylet stopped
    answering. atune disconnects from it (so Ray does not end the process) and
    ``fit()`` raises this error, saying what was saved and how to continue.
    """


class UnknownTrialError(AtuneError, KeyError):
    """A command named a trial that is not in the experiment, or has ended (or the
    experiment itself has ended)."""

    def __str__(self) -> str:  # not KeyError's repr of the message
        return str(self.args[0]) if self.args else ""


class PluginError(AtuneError):
    """A plugin of the experiment raised: a callback, logger, searcher, scheduler or stopper.

    The experiment ends as for ``stop_all()``: running trials stop after the result
    they are on, everything recorded is kept, and ``fit()`` raises this error. The
    message names the plugin and the hook; the plugin's exception is ``__cause__``.

    Attributes:
        plugin: The object that raised.
        hook: The method that raised, e.g. ``"on_trial_result"``.
    """

    def __init__(self, message: str, *, plugin: object = None, hook: str = "") -> None:
        super().__init__(message)
        self.plugin = plugin
        self.hook = hook
