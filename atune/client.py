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


def _base_url(tune_address: str, port_forward: int) -> str:
    address = tune_address.rstrip("/")
    if "://" not in address:
        address = f"http://{address}"
    return f"{address}:{int(port_forward)}"


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


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

        self._http = httpx.Client(
            base_url=_base_url(tune_address, port_forward),
            headers=_headers(token),
            timeout=timeout,
        )

    def get_all_trials(self) -> list[dict[str, Any]]:
        """Every trial: ``{"id", "name", "status", "config", "last_result", ...}``."""
        return _unpack(self._http.get("/trials"), "trials")  # type: ignore[no-any-return]

    def get_trial(self, trial_id: str) -> dict[str, Any]:
        return _unpack(self._http.get(f"/trials/{trial_id}"), "trial")  # type: ignore[no-any-return]

    def add_trial(self, name: str, specification: dict[str, Any]) -> dict[str, Any]:
        """Add a trial; ``specification`` is ``{"config": {...}}`` of plain values."""
        body = {"name": name, "spec": specification}
        return _unpack(self._http.post("/trials", json=body), "trial")  # type: ignore[no-any-return]

    def stop_trial(self, trial_id: str) -> dict[str, Any]:
        """Stop a trial; returns it once it has ended."""
        return _unpack(self._http.put(f"/trials/{trial_id}"), "trial")  # type: ignore[no-any-return]

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

        self._http = httpx.AsyncClient(
            base_url=_base_url(tune_address, port_forward),
            headers=_headers(token),
            timeout=timeout,
        )

    async def get_all_trials(self) -> list[dict[str, Any]]:
        return _unpack(await self._http.get("/trials"), "trials")  # type: ignore[no-any-return]

    async def get_trial(self, trial_id: str) -> dict[str, Any]:
        return _unpack(await self._http.get(f"/trials/{trial_id}"), "trial")  # type: ignore[no-any-return]

    async def add_trial(self, name: str, specification: dict[str, Any]) -> dict[str, Any]:
        body = {"name": name, "spec": specification}
        return _unpack(await self._http.post("/trials", json=body), "trial")  # type: ignore[no-any-return]

    async def stop_trial(self, trial_id: str) -> dict[str, Any]:
        return _unpack(await self._http.put(f"/trials/{trial_id}"), "trial")  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncTuneClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
