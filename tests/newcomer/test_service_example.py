"""examples/service.py as a user runs it: a real server process, real HTTP clients."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import httpx

SERVICE = pathlib.Path(__file__).parents[2] / "examples" / "service.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_start_watch_and_stop_from_the_page(tmp_path):
    port = _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="ats", dir="/tmp")
    env = {**os.environ, "ATUNE_RESULTS_DIR": str(tmp_path), "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    log = open(tmp_path / "service.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, str(SERVICE), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"{base}/", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "service.log").read_text()
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
        assert page.status_code == 200 and "EventSource" in page.text
        started = httpx.post(
            f"{base}/experiments", json={"samples": 2, "steps": 400, "sleep": 0.02}, timeout=120
        )
        assert started.status_code == 201
        exp = started.json()["id"]
        stopped_id = None
        kinds = []
        with httpx.stream("GET", f"{base}/experiments/{exp}/events", timeout=120) as events:
            for line in events.iter_lines():
                if not line.startswith("data: "):
                    continue
                data = json.loads(line[len("data: ") :])
                kinds.append(data["kind"])
                if data["kind"] == "result" and stopped_id is None and data["result"]["step"] >= 5:
                    stopped_id = data["trial_id"]
                    # What the page's stop button does.
                    response = httpx.post(
                        f"{base}/experiments/{exp}/trials/{stopped_id}/stop", timeout=60
                    )
                    assert response.json() == {"stopped": stopped_id}
                if data["kind"] == "experiment_ended":
                    break
        assert "trial_completed" in kinds
        trials = httpx.get(f"{base}/experiments/{exp}/api/trials", timeout=30).json()["trials"]
        by_id = {t["id"]: t for t in trials}
        assert by_id[stopped_id]["status"] == "TERMINATED"
        assert by_id[stopped_id]["last_result"]["step"] < 400  # stopped early
        assert any(t["last_result"]["step"] == 400 for t in trials)  # the other ran on
        missing = httpx.post(f"{base}/experiments/{exp}/trials/nope/stop", timeout=30)
        assert missing.status_code == 404 and missing.json()["error"]
        # Ctrl-C ends the service (and any experiment it still runs).
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, (tmp_path / "service.log").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)
