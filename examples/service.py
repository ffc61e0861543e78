"""A small web service that runs experiments on request and streams them to a browser.

    python examples/service.py --port 8000      # then open http://127.0.0.1:8000/

- ``POST /experiments`` starts an experiment (``{"samples": 4}``) and returns its id;
  several may run at once, each an ``async with tuner.start() as run`` in the service's
  own task group, on the service's event loop.
- ``GET /experiments/<id>/events`` streams its events to the page (server-sent events).
- ``POST /experiments/<id>/trials/<trial_id>/stop`` stops a trial (the page's buttons).
- ``/experiments/<id>/api/...`` is the experiment's own REST API (``run.asgi_app()``,
  mounted): ``GET .../api/trials`` and the rest, as ``TuneClient`` and curl use it.
- ``GET /`` is the page.

``--smoke-test`` starts the service on a free port, runs one experiment through its HTTP
API as a client would, prints the best config and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import atune as tune


def train(config: dict[str, Any]) -> None:
    """A toy objective: a noisy curve whose height depends on lr and width."""
    for step in range(1, config["steps"] + 1):
        time.sleep(config["sleep"])
        score = (
            config["width"] * math.log1p(step) * math.exp(-((math.log10(config["lr"]) + 2) ** 2))
        )
        tune.report({"score": score, "step": step})


class Experiments:
    """The running and finished experiments of the service, by id."""

    def __init__(self) -> None:
        self.runs: dict[str, tune.LiveRun] = {}
        self.grids: dict[str, tune.ResultGrid] = {}
        self._ids = itertools.count(1)
        self.tasks: anyio.abc.TaskGroup | None = None

    async def start(self, samples: int, steps: int, sleep: float) -> str:
        assert self.tasks is not None
        exp_id = f"exp{next(self._ids)}"
        tuner = tune.Tuner(
            train,
            param_space={
                "lr": tune.loguniform(1e-4, 1e-1),
                "width": tune.uniform(1, 10),
                "steps": steps,
                "sleep": sleep,
            },
            tune_config=tune.TuneConfig(metric="score", mode="max", num_samples=samples),
            run_config=tune.RunConfig(name=f"service_{exp_id}_{int(time.time())}", verbose=0),
        )
        started = anyio.Event()

        async def run_it() -> None:
            async with tuner.start() as run:
                self.runs[exp_id] = run
                started.set()
                self.grids[exp_id] = await run.wait()

        self.tasks.start_soon(run_it, name=exp_id)
        await started.wait()
        return exp_id


def create_app() -> Starlette:
    experiments = Experiments()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            experiments.tasks = tg
            yield
            tg.cancel_scope.cancel()  # the service stops: so do its experiments

    def find(request: Request) -> tune.LiveRun | None:
        return experiments.runs.get(request.path_params["exp_id"])

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def start(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        samples = int(body.get("samples", 4))
        steps = int(body.get("steps", 60))
        sleep = float(body.get("sleep", 0.1))
        exp_id = await experiments.start(samples, steps, sleep)
        return JSONResponse({"id": exp_id}, status_code=201)

    async def listing(request: Request) -> Response:
        return JSONResponse(
            {"experiments": [{"id": k, "done": r.done} for k, r in experiments.runs.items()]}
        )

    async def events(request: Request) -> Response:
        run = find(request)
        if run is None:
            return JSONResponse({"error": "no such experiment"}, status_code=404)

        async def stream() -> AsyncIterator[str]:
            for trial in run.trials:  # what happened before the page connected
                payload = {
                    "kind": "trial",
                    "trial_id": trial.trial_id,
                    "status": trial.status,
                    "config": trial.config,
                    "result": trial.last_result,
                }
                yield f"data: {json.dumps(payload, default=str)}\n\n"
            async for event in run.events(maxsize=256):
                payload = {"kind": event.kind, "trial_id": event.trial_id, "result": event.result}
                if event.kind == "trial_started":
                    config = next(t.config for t in run.trials if t.trial_id == event.trial_id)
                    payload["config"] = config
                yield f"data: {json.dumps(payload, default=str)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def stop_trial(request: Request) -> Response:
        run = find(request)
        if run is None:
            return JSONResponse({"error": "no such experiment"}, status_code=404)
        try:
            await run.stop_trial(request.path_params["trial_id"])
        except tune.errors.UnknownTrialError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"stopped": request.path_params["trial_id"]})

    class ExperimentAPI:
        """``/experiments/<id>/api/<path>``: the experiment's own REST API (an ASGI app)."""

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            run = experiments.runs.get(scope["path_params"]["exp_id"])
            if run is None:
                response = JSONResponse({"error": "no such experiment"}, status_code=404)
                await response(scope, receive, send)
                return
            inner = dict(scope, path="/" + scope["path_params"]["rest"], root_path="")
            await run.asgi_app()(inner, receive, send)

    routes = [
        Route("/", page),
        Route("/experiments", start, methods=["POST"]),
        Route("/experiments", listing, methods=["GET"]),
        Route("/experiments/{exp_id}/events", events),
        Route("/experiments/{exp_id}/trials/{trial_id}/stop", stop_trial, methods=["POST"]),
        Route(
            "/experiments/{exp_id}/api/{rest:path}",
            ExperimentAPI(),
            methods=["GET", "POST", "PUT"],
        ),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.experiments = experiments
    return app


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>atune service</title>
<style>
 body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
 table { border-collapse: collapse; margin-top: 1em; }
 td, th { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
 th { background: #f4f4f4; } .RUNNING { color: #0a6; } .TERMINATED { color: #888; }
 button { cursor: pointer; }
</style></head>
<body>
<h1>atune: live experiments</h1>
<button id="start">Start an experiment</button> <span id="status"></span>
<table id="trials"><thead><tr><th>trial</th><th>lr</th><th>width</th><th>status</th>
<th>step</th><th>score</th><th></th></tr></thead><tbody></tbody></table>
<script>
let exp = null;
const rows = {};
function row(id) {
  if (!rows[id]) {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${id}</td><td class=lr></td><td class=width></td>` +
      `<td class=status>PENDING</td><td class=step></td><td class=score></td>` +
      `<td><button>stop</button></td>`;
    tr.querySelector("button").onclick = () =>
      fetch(`/experiments/${exp}/trials/${id}/stop`, {method: "POST"});
    document.querySelector("#trials tbody").appendChild(tr);
    rows[id] = tr;
  }
  return rows[id];
}
function show(tr, data) {
  if (data.config) {
    tr.querySelector(".lr").textContent = Number(data.config.lr).toExponential(2);
    tr.querySelector(".width").textContent = Number(data.config.width).toFixed(2);
  }
  if (data.result && data.result.step !== undefined) {
    tr.querySelector(".step").textContent = data.result.step;
    tr.querySelector(".score").textContent = Number(data.result.score).toFixed(3);
  }
}
function watch(id) {
  exp = id;
  document.getElementById("status").textContent = `experiment ${id} running`;
  const source = new EventSource(`/experiments/${id}/events`);
  source.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.kind === "experiment_ended") {
      document.getElementById("status").textContent = `experiment ${id} ended`;
      source.close();
      return;
    }
    const tr = row(data.trial_id);
    const status = {trial: data.status, trial_started: "RUNNING", result: "RUNNING",
      trial_completed: "TERMINATED", trial_errored: "ERROR", trial_paused: "PAUSED"}[data.kind];
    if (status) {
      const cell = tr.querySelector(".status");
      cell.textContent = status;
      cell.className = "status " + status;
    }
    show(tr, data);
  };
}
document.getElementById("start").onclick = async () => {
  const body = JSON.stringify({samples: 6});
  const response = await fetch("/experiments", {method: "POST", body: body});
  watch((await response.json()).id);
};
fetch("/experiments").then(r => r.json()).then(d => {
  const running = d.experiments.filter(e => !e.done);
  if (running.length) watch(running[running.length - 1].id);
});
</script>
</body></html>
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _smoke_test() -> None:
    """Start the service, run one experiment through its HTTP API, print the best config."""
    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            exp = (
                await http.post("/experiments", json={"samples": 3, "steps": 5, "sleep": 0.01})
            ).json()["id"]
            best: dict[str, Any] = {}
            async with http.stream("GET", f"/experiments/{exp}/events") as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = json.loads(line[len("data: ") :])
                    if data["kind"] == "experiment_ended":
                        break
                    result = data.get("result") or {}
                    if "score" in result and result["score"] > best.get("score", -math.inf):
                        best = result
            trials = (await http.get(f"/experiments/{exp}/api/trials")).json()["trials"]
        top = max(trials, key=lambda t: t["last_result"].get("score", -math.inf))
        print(f"Best config: {top['config']} (score {best.get('score', float('nan')):.3f})")
        server.should_exit = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--smoke-test", action="store_true", help="run once, print, exit")
    args = parser.parse_args()
    if args.smoke_test:
        anyio.run(_smoke_test)
        return
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
