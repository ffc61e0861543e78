"""The Gaussian-process bandit behind PB2 (Parker-Holder et al., 2020).

Pure numerical code, run on a worker thread: given the observed reward changes per
unit of time at ``(time, reward before, hyperparameters)``, fit a GP with a
time-varying squared-exponential kernel and pick the hyperparameters that maximise
GP-UCB at the (fixed) time and reward of the trial being cloned.

This module imports scikit-learn; :mod:`atune.schedulers.pb2` imports it lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import (
    ConstantKernel,
    Hyperparameter,
    Kernel,
    WhiteKernel,
)

__all__ = ["TimeVaryingSquaredExp", "select_config"]

#: Only the latest observations are fitted, so the GP (cubic in their number) stays fast.
MAX_GP_POINTS = 200
#: Random candidates at which UCB is evaluated, before the best few are refined.
NUM_CANDIDATES = 1000
#: Candidates refined by L-BFGS-B, best first.
NUM_REFINED = 3
#: GP-UCB's exploration schedule: beta_t = C1 + max(0, log(C2 * t)) (the PB2 paper's).
UCB_C1, UCB_C2 = 0.2, 0.4
#: Random restarts of the kernel hyperparameter optimiser (after the initial values).
GP_RESTARTS = 2
#: Added to the kernel's diagonal for a stable Cholesky factorisation.
GP_JITTER = 1e-6


class TimeVaryingSquaredExp(Kernel):  # type: ignore[misc]
    """``exp(-|x - x'|^2 / length_scale) * (1 - epsilon) ** (|t - t'| / 2)``.

    Column 0 of the input is time ``t``; the rest is ``x``. Observations far apart in
    time correlate less, so the GP forgets old reward changes (the PB2 kernel).
    """

    def __init__(
        self,
        length_scale: float = 1.0,
        epsilon: float = 0.1,
        length_scale_bounds: tuple[float, float] = (1e-5, 1.0),
        epsilon_bounds: tuple[float, float] = (1e-5, 0.5),
    ) -> None:
        self.length_scale = length_scale
        self.epsilon = epsilon
        self.length_scale_bounds = length_scale_bounds
        self.epsilon_bounds = epsilon_bounds

    @property
    def hyperparameter_length_scale(self) -> Hyperparameter:
        return Hyperparameter("length_scale", "numeric", self.length_scale_bounds)

    @property
    def hyperparameter_epsilon(self) -> Hyperparameter:
        return Hyperparameter("epsilon", "numeric", self.epsilon_bounds)

    def __call__(
        self, X: np.ndarray, Y: np.ndarray | None = None, eval_gradient: bool = False
    ) -> Any:
        X = np.atleast_2d(X)
        if eval_gradient and Y is not None:
            raise ValueError("the gradient is only available when Y is None")
        Y = X if Y is None else np.atleast_2d(Y)
        dt = np.abs(X[:, :1] - Y[:, :1].T)
        diff = X[:, None, 1:] - Y[None, :, 1:]
        d2 = np.sum(diff * diff, axis=-1)
        ell, eps = self.length_scale, self.epsilon
        K = np.exp(-d2 / ell) * (1.0 - eps) ** (0.5 * dt)
        if not eval_gradient:
            return K
        grads = []
        # d/d(log eps), d/d(log ell): sklearn optimises log-parameters, in name order.
        if not self.hyperparameter_epsilon.fixed:
            grads.append(K * (-0.5 * dt * eps / (1.0 - eps)))
        if not self.hyperparameter_length_scale.fixed:
            grads.append(K * d2 / ell)
        gradient = np.stack(grads, axis=-1) if grads else np.empty((*K.shape, 0))
        return K, gradient

    def diag(self, X: np.ndarray) -> np.ndarray:
        return np.ones(np.atleast_2d(X).shape[0])

    def is_stationary(self) -> bool:
        return True


def _fit_gp(
    X: np.ndarray, y: np.ndarray, kernel: Kernel, rng: np.random.Generator
) -> GaussianProcessRegressor:
    """A GP on ``(X, y)`` with kernel hyperparameters maximising the marginal likelihood.

    The optimisation (L-BFGS-B in log-parameter space, from the initial values and
    ``GP_RESTARTS`` random starts) is done here rather than by ``fit``, which would warn
    whenever a hyperparameter ends at a bound (common with few points): warnings from
    a worker thread are noise, and ``warnings.catch_warnings`` is not thread-safe.
    """
    probe = GaussianProcessRegressor(kernel, alpha=GP_JITTER, optimizer=None).fit(X, y)
    bounds = probe.kernel_.bounds

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = probe.log_marginal_likelihood(theta, eval_gradient=True, clone_kernel=False)
        return -float(value), -np.asarray(grad)

    starts = [probe.kernel_.theta] + [
        rng.uniform(bounds[:, 0], bounds[:, 1]) for _ in range(GP_RESTARTS)
    ]
    best_theta, best_value = probe.kernel_.theta, np.inf
    for start in starts:
        try:
            res = minimize(objective, start, method="L-BFGS-B", jac=True, bounds=bounds)
        except np.linalg.LinAlgError:
            continue
        if np.isfinite(res.fun) and res.fun < best_value:
            best_theta, best_value = np.asarray(res.x), float(res.fun)
    fitted = probe.kernel_.clone_with_theta(best_theta)
    return GaussianProcessRegressor(fitted, alpha=GP_JITTER, optimizer=None).fit(X, y)


def _normalize(data: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    span = high - low
    span = np.where(span > 0, span, 1.0)
    return (data - low) / span


def _standardize(y: np.ndarray) -> np.ndarray:
    std = float(np.std(y))
    return (y - np.mean(y)) / (std if std > 0 else 1.0)


def _ucb(
    model: GaussianProcessRegressor,
    variance_model: GaussianProcessRegressor,
    fixed: np.ndarray,
    candidates: np.ndarray,
    kappa: float,
) -> np.ndarray:
    points = np.hstack([np.tile(fixed, (candidates.shape[0], 1)), candidates])
    mean = model.predict(points)
    _, std = variance_model.predict(points, return_std=True)
    return np.asarray(mean).ravel() + kappa * np.asarray(std).ravel()


def select_config(
    X: np.ndarray,
    y: np.ndarray,
    current: np.ndarray | None,
    newpoint: np.ndarray,
    bounds: np.ndarray,
    seed: int,
) -> np.ndarray:
    """The hyperparameters maximising GP-UCB for a trial at ``newpoint``.

    Args:
        X: Observations, one per row: ``[time, reward before, hyperparameters...]``.
        y: The reward change per unit of time after each observation.
        current: Hyperparameters already chosen at this time step (rows), or None. They
            are added to the variance model with the new point's time and reward, so
            that a batch of choices spreads out (Desautels et al., 2014).
        newpoint: ``[time, reward]`` of the checkpoint being cloned (fixed).
        bounds: ``(2, n)`` array of the hyperparameters' ``[low, high]``.
        seed: Seed of the GP optimiser restarts and of the candidates.

    Returns:
        The chosen hyperparameters, inside ``bounds``.
    """
    X = np.asarray(X, dtype=float)[-MAX_GP_POINTS:]
    y = np.asarray(y, dtype=float)[-MAX_GP_POINTS:]
    low, high = np.min(bounds, axis=0), np.max(bounds, axis=0)
    num_fixed = X.shape[1] - low.shape[0]
    fixed_low = X[:, :num_fixed].min(axis=0)
    fixed_high = X[:, :num_fixed].max(axis=0)
    lo = np.concatenate([fixed_low, low])
    hi = np.concatenate([fixed_high, high])
    Xn = np.clip(_normalize(X, lo, hi), 0.0, 1.0)
    yn = _standardize(y)
    fixed = np.clip(_normalize(np.asarray(newpoint, dtype=float), fixed_low, fixed_high), 0, 1)

    rng = np.random.default_rng(seed)
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * TimeVaryingSquaredExp() + WhiteKernel(
        0.1, (1e-6, 1e1)
    )
    model = _fit_gp(Xn, yn, kernel, rng)
    if current is None or len(current) == 0:
        variance_model = model
    else:
        # Same kernel hyperparameters; the pending points only lower the variance
        # (with fixed hyperparameters it does not depend on their labels).
        pending = _normalize(np.asarray(current, dtype=float), low, high)
        pending = np.hstack([np.tile(fixed, (pending.shape[0], 1)), pending])
        variance_model = GaussianProcessRegressor(model.kernel_, alpha=GP_JITTER, optimizer=None)
        variance_model.fit(np.vstack([Xn, pending]), np.concatenate([yn, np.zeros(len(pending))]))

    beta = UCB_C1 + max(0.0, float(np.log(UCB_C2 * Xn.shape[0])))
    kappa = float(np.sqrt(beta))
    dims = low.shape[0]
    candidates = rng.uniform(0.0, 1.0, size=(NUM_CANDIDATES, dims))
    values = _ucb(model, variance_model, fixed, candidates, kappa)
    best_x = candidates[int(np.argmax(values))]
    best_v = float(np.max(values))
    for start in candidates[np.argsort(values)[::-1][:NUM_REFINED]]:
        res = minimize(
            lambda x: -float(_ucb(model, variance_model, fixed, x[None, :], kappa)[0]),
            start,
            bounds=[(0.0, 1.0)] * dims,
            method="L-BFGS-B",
            options={"maxiter": 50},
        )
        if -float(res.fun) > best_v:
            best_v, best_x = -float(res.fun), np.asarray(res.x)
    best_x = np.clip(best_x, 0.0, 1.0)
    return np.asarray(low + best_x * (high - low), dtype=float)
