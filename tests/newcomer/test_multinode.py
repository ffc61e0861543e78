"""A real multi-node Ray cluster on this machine: a worker node is lost mid-run.

``ray.cluster_utils.Cluster`` starts a head node and a worker node as separate raylets;
atune connects to it like any existing cluster (``ray.init(address=...)``), spreads the
trials over both nodes, and when the worker node is removed mid-run its trials are
retried from their checkpoints on the surviving node and complete, each with one
history (iterations 1..N, no gap, no duplicate).
"""

from __future__ import annotations


def test_trials_of_a_lost_node_complete_from_checkpoints_on_the_survivor(run_script):
    run = run_script(
        """
        import json, os, tempfile, threading, time
        import ray
        from ray.cluster_utils import Cluster
        import atune as tune

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        worker = cluster.add_node(num_cpus=2)
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        cluster.wait_for_nodes()
        STEPS = 60

        def train(config):
            start = 0
            if (ckpt := tune.get_checkpoint()) is not None:
                with open(os.path.join(ckpt.path, "i.txt")) as f:
                    start = int(f.read())
            for i in range(start + 1, STEPS + 1):
                time.sleep(0.1)
                d = tempfile.mkdtemp()
                with open(os.path.join(d, "i.txt"), "w") as f:
                    f.write(str(i))
                node = ray.get_runtime_context().get_node_id()
                tune.report({"node": node}, checkpoint=tune.Checkpoint.from_directory(d))

        def remove_worker_node():
            cluster.remove_node(worker)
            print("REMOVED", worker.node_id, flush=True)

        class RemoveNodeOnceAllRun(tune.Callback):
            # Once every trial has reported 5 results, the worker node goes away.
            def __init__(self):
                self.removing = False

            def on_trial_result(self, iteration, trials, trial, result, **info):
                if not self.removing and len(trials) == 3 and all(
                    t.num_results >= 5 for t in trials
                ):
                    self.removing = True
                    threading.Thread(target=remove_worker_node, daemon=True).start()

        grid = tune.Tuner(
            train,
            param_space={"x": tune.grid_search([1, 2, 3])},
            run_config=tune.RunConfig(
                verbose=0,
                callbacks=[RemoveNodeOnceAllRun()],
                failure_config=tune.FailureConfig(max_failures=3),
            ),
        ).fit_sync()
        for r in grid:
            with open(os.path.join(r.path, "result.json")) as f:
                rows = [json.loads(line) for line in f]
            nodes = sorted({row["node"] for row in rows})
            print("TRIAL", json.dumps({
                "error": repr(r.error),
                "iterations": [row["training_iteration"] for row in rows],
                "nodes": nodes,
            }))
        ray.shutdown()
        cluster.shutdown()
        """,
        timeout=240,
    )
    assert run.returncode == 0, run.explain()
    import json

    removed = run.stdout.split("REMOVED ")[1].split()[0]
    trials = [json.loads(line[6:]) for line in run.stdout.splitlines() if line.startswith("TRIAL ")]
    assert len(trials) == 3, run.explain()
    for trial in trials:
        assert trial["error"] == "None", run.explain()
        assert trial["iterations"] == list(range(1, 61)), run.explain()
    # Two trials ran on the worker node before it went, and moved to the head node.
    moved = [t for t in trials if removed in t["nodes"]]
    assert len(moved) == 2 and all(len(t["nodes"]) == 2 for t in moved), run.explain()


def test_a_trial_spreads_its_own_workers_over_the_nodes(run_script):
    # STRICT_SPREAD: one bundle per node; the trainable reserves nothing (an empty head
    # bundle), so its two workers, running at once, take one bundle each: two nodes.
    run = run_script(
        """
        import ray
        from ray.cluster_utils import Cluster
        import atune as tune

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
        cluster.add_node(num_cpus=2)
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        cluster.wait_for_nodes()

        @ray.remote(num_cpus=1)
        def where():
            import time

            time.sleep(1.0)  # both run at once, one in each bundle
            return ray.get_runtime_context().get_node_id()

        def train(config):
            nodes = ray.get([where.remote(), where.remote()])
            me = ray.get_runtime_context().get_node_id()
            tune.report({"nodes": sorted(set(nodes)), "me": me})

        pgf = tune.PlacementGroupFactory([{}, {"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
        grid = tune.Tuner(
            tune.with_resources(train, pgf),
            param_space={"x": tune.grid_search([1, 2])},
            run_config=tune.RunConfig(verbose=0),
        ).fit_sync()
        assert not grid.errors, grid.errors
        all_nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        for r in grid:
            assert set(r.metrics["nodes"]) == all_nodes, (r.metrics, all_nodes)
        print("SPREAD", len(all_nodes), flush=True)
        ray.shutdown()
        cluster.shutdown()
        """,
        timeout=240,
    )
    assert run.returncode == 0, run.explain()
    assert "SPREAD 2" in run.stdout, run.explain()
