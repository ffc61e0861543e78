"""The REST API for real: uvicorn on 127.0.0.1, real HTTP clients (httpx, TuneClient, curl)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import anyio
import httpx
import pytest

import atune as tune
from atune.errors import ConfigError, UnknownTrialError


def counter(config):
    for i in range(1, config.get("steps", 400) + 1):
        time.sleep(config.get("sleep", 0.02))
        tune.report({"i": i, "score": config["x"] * i})


def _tuner(storage: str, **rc) -> tune.Tuner:
    return tune.Tuner(
        counter,
        param_space={"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(metric="score", mode="max"),
        run_config=tune.RunConfig(
            storage_path=storage, verbose=0, with_server=True, server_port=0, **rc
        ),
    )


async def _until_running(client: httpx.AsyncClient, n: int) -> list[dict]:
    with anyio.fail_after(60):
        while True:
            trials = (await client.get("/trials")).json()["trials"]
            if sum(t["status"] == "RUNNING" and bool(t["last_result"]) for t in trials) >= n:
                return trials
            await anyio.sleep(0.05)


async def test_list_get_add_stop_and_errors(storage):
    async with _tuner(storage).start() as run:
        host, port = run.server_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            trials = await _until_running(http, 2)
            assert {"id", "name", "status", "config", "last_result"} <= set(trials[0])
            one = trials[0]["id"]
            got = (await http.get(f"/trials/{one}")).json()["trial"]
            assert got["id"] == one and got["config"]["x"] in (1, 2)
            # Add a trial as the seed's add_trial(name, specification) does.
            added = await http.post(
                "/trials", json={"name": "more", "spec": {"config": {"x": 7, "steps": 2}}}
            )
            assert added.status_code == 201
            new = added.json()["trial"]
            assert new["config"] == {"x": 7, "steps": 2}
            assert new["status"] in ("PENDING", "RUNNING")
            # Stop: PUT returns once the trial has ended.
            stopped = await http.put(f"/trials/{one}")
            assert stopped.status_code == 200
            assert stopped.json()["trial"]["status"] == "TERMINATED"
            # Bad input gets 4xx with a JSON message, never a 500.
            for response, status in [
                (await http.get("/trials/nope"), 404),
                (await http.put("/trials/nope"), 404),
                (await http.put(f"/trials/{one}"), 409),  # ended already
                (await http.post("/trials", content=b"{not json"), 400),
                (await http.post("/trials", json=[1, 2]), 400),
                (await http.post("/trials", json={"spec": {"config": 3}}), 400),
                (await http.delete("/trials"), 405),
                (await http.get("/nothing"), 404),
            ]:
                assert response.status_code == status, (response.request.url, response.text)
                assert response.json()["error"]
            await run.stop()
    grid = await run.wait()
    assert len(grid) >= 2


async def test_tune_client_sync_and_async(storage):
    async with _tuner(storage).start() as run:
        host, port = run.server_address
        async with tune.AsyncTuneClient(host, port) as client:
            with anyio.fail_after(60):
                while sum(t["last_result"] != {} for t in await client.get_all_trials()) < 2:
                    await anyio.sleep(0.05)
            trials = await client.get_all_trials()
            first = trials[0]["id"]
            assert (await client.get_trial(first))["id"] == first
            with pytest.raises(UnknownTrialError, match="no trial"):
                await client.get_trial("nope")

        def sync_side() -> str:
            with tune.TuneClient(host, port) as client:
                added = client.add_trial("extra", {"config": {"x": 3, "steps": 1}})
                stopped = client.stop_trial(first)
                assert stopped["status"] == "TERMINATED"
                return added["id"]

        new_id = await anyio.to_thread.run_sync(sync_side)
        assert new_id in {t.trial_id for t in run.trials}
        await run.stop()


async def test_the_seeds_curl_commands(storage):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    async with _tuner(storage).start() as run:
        host, port = run.server_address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            trials = await _until_running(http, 1)

        def curl(*args: str) -> dict:
            out = subprocess.run(
                ["curl", "-s", *args], capture_output=True, text=True, timeout=60, check=True
            )
            return json.loads(out.stdout)

        url = f"http://{host}:{port}"
        listed = await anyio.to_thread.run_sync(curl, f"{url}/trials")
        assert len(listed["trials"]) == 2
        one = trials[0]["id"]
        got = await anyio.to_thread.run_sync(curl, f"{url}/trials/{one}")
        assert got["trial"]["id"] == one
        stopped = await anyio.to_thread.run_sync(curl, "-X", "PUT", f"{url}/trials/{one}")
        assert stopped["trial"]["status"] == "TERMINATED"
        await run.stop()


async def test_a_token_is_required_when_set(storage):
    async with _tuner(storage, server_token="s3cret").start() as run:
        host, port = run.server_address
        url = f"http://{host}:{port}/trials"
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).status_code == 401
            wrong = await http.get(url, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.json()["error"]
            ok = await http.get(url, headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200
        with pytest.raises(tune.AtuneError, match="401"):
            await tune.AsyncTuneClient(host, port).get_all_trials()
        assert len(await tune.AsyncTuneClient(host, port, token="s3cret").get_all_trials()) == 2
        await run.stop()


async def test_the_event_stream(storage):
    async with _tuner(storage).start() as run:
        host, port = run.server_address
        kinds: list[str] = []
        async with (
            httpx.AsyncClient(timeout=60) as http,
            http.stream("GET", f"http://{host}:{port}/events") as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kinds.append(line[len("event: ") :])
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
                    assert data["kind"] == kinds[-1]
                    if data["kind"] == "result" and kinds.count("result") == 5:
                        await run.stop()
                if kinds and kinds[-1] == "experiment_ended":
                    break
    assert "result" in kinds and kinds[-1] == "experiment_ended"


def test_binding_beyond_this_machine_needs_a_token():
    with pytest.raises(ConfigError, match="server_token"):
        tune.RunConfig(with_server=True, server_host="0.0.0.0")
    tune.RunConfig(with_server=True, server_host="0.0.0.0", server_token="t")  # fine


async def test_a_busy_port_is_a_clear_error(storage):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tuner = tune.Tuner(
            counter,
            param_space={"x": 1},
            run_config=tune.RunConfig(
                storage_path=storage, verbose=0, with_server=True, server_port=port
            ),
        )
        with pytest.raises(ConfigError, match="server_port"):
            await tuner.fit()


async def test_the_api_mounts_in_a_starlette_service(storage):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    tuner = tune.Tuner(
        counter,
        param_space={"x": tune.grid_search([1, 2]), "steps": 3},
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    async with tuner.start() as run:

        async def home(request):
            return PlainTextResponse("my service")

        app = Starlette(routes=[Route("/", home), Mount("/tune", run.asgi_app())])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            assert (await http.get("/")).text == "my service"
            with anyio.fail_after(60):
                while len((await http.get("/tune/trials")).json()["trials"]) < 2:
                    await anyio.sleep(0.05)
            missing = await http.get("/tune/trials/nope")
            assert missing.status_code == 404 and missing.json()["error"]
