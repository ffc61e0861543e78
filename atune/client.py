"""``TuneClient``: talk to a running experiment's REST API (the seeds' client).

::

    client = atune.TuneClient("127.0.0.1", 4321)          # RunConfig(with_server=True)
    client.get_all_trials()                               # [{"id": ..., "status": ...}, ...]
    client.get_trial(trial_id)
    client.add_trial("more", {"config": {"lr": 0.01}})
    client.stop_trial(trial_id)

:class:`AsyncTuneClient` has the same methods as coroutines, for async code. Both raise
:class:`~atune.errors.UnknownTrialError` for an unknown or finished trial and
:class:`~atune.errors.AtuneError` with the server's message for other refusals.
"""

from __future__ import annotations

from typing import Any

from atune.errors import AtuneError, UnknownTrialError

__all__ = ["AsyncTuneClient", "TuneClient"]


def _settings(
    tune_address: str, port_forward: int, token: str | None, timeout: float
) -> dict[str, Any]:
    """The keyword arguments of the httpx client (sync or async) for a server."""
    address = tune_address.rstrip("/")
    if "://" not in address:
        address = f"http://{address}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return {"base_url": f"{address}:{int(port_forward)}", "headers": headers, "timeout": timeout}


#: The requests of the client's methods: (method, path, JSON body, key of the answer).
Request = tuple[str, str, Any, str]


def _all_trials() -> Request:
    return "GET", "/trials", None, "trials"


def _trial(trial_id: str) -> Request:
    return "GET", f"/trials/{trial_id}", None, "trial"


def _add_trial(name: str, specification: dict[str, Any]) -> Request:
    return "POST", "/trials", {"name": name, "spec": specification}, "trial"


def _stop_trial(trial_id: str) -> Request:
    return "PUT", f"/trials/{trial_id}", None, "trial"


def _unpack(response: Any, key: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text}
    if response.status_code in (404, 409):
        raise UnknownTrialError(body.get("error", response.text))
    if response.status_code >= 400:
        raise AtuneError(
            f"the Tune server refused the request ({response.status_code}): "
            f"{body.get('error', response.text)}"
        )
    return body[key]


class TuneClient:
    """Interact with a running experiment's REST API (``RunConfig(with_server=True)``).

    Args:
        tune_address: The server's address, e.g. ``"127.0.0.1"`` (or a URL).
        port_forward: Its port (``RunConfig.server_port``).
        token: The ``RunConfig.server_token``, if the server has one.
        timeout: Seconds per request.
    """

    def __init__(
        self,
        tune_address: str,
        port_forward: int,
        token: str | None = None,
        *,
        timeout: float = 60.0,
    ) -> None:
        import httpx

        self._http = httpx.Client(**_settings(tune_address, port_forward, token, timeout))

    def _call(self, request: Request) -> Any:
        method, path, body, key = request
        return _unpack(self._http.request(method, path, json=body), key)

    def get_all_trials(self) -> list[dict[str, Any]]:
        """Every trial: ``{"id", "name", "status", "config", "last_result", ...}``."""
        return self._call(_all_trials())  # type: ignore[no-any-return]

    def get_trial(self, trial_id: str) -> dict[str, Any]:
        return self._call(_trial(trial_id))  # type: ignore[no-any-return]

    def add_trial(self, name: str, specification: dict[str, Any]) -> dict[str, Any]:
        """Add a trial; ``specification`` is ``{"config": {...}}`` of plain values."""
        return self._call(_add_trial(name, specification))  # type: ignore[no-any-return]

    def stop_trial(self, trial_id: str) -> dict[str, Any]:
        """Stop a trial; returns it once it has ended."""
        return self._call(_stop_trial(trial_id))  # type: ignore[no-any-return]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TuneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTuneClient:
    """:class:`TuneClient` for async code: the same methods, as coroutines."""

    def __init__(
        self,
        tune_address: str,
        port_forward: int,
        token: str | None = None,
        *,
        timeout: float = 60.0,
    ) -> None:
        import httpx

        self._http = httpx.AsyncClient(**_settings(tune_address, port_forward, token, timeout))

    async def _call(self, request: Request) -> Any:
        method, path, body, key = request
        return _unpack(await self._http.request(method, path, json=body), key)

    async def get_all_trials(self) -> list[dict[str, Any]]:
        return await self._call(_all_trials())  # type: ignore[no-any-return]

    async def get_trial(self, trial_id: str) -> dict[str, Any]:
        return await self._call(_trial(trial_id))  # type: ignore[no-any-return]

    async def add_trial(self, name: str, specification: dict[str, Any]) -> dict[str, Any]:
        return await self._call(_add_trial(name, specification))  # type: ignore[no-any-return]

    async def stop_trial(self, trial_id: str) -> dict[str, Any]:
        return await self._call(_stop_trial(trial_id))  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncTuneClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
