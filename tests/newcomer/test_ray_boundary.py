"""What Ray refuses gets atune's message, naming the object and the fix, at once."""

from __future__ import annotations


def test_a_cluster_address_nothing_listens_on_fails_at_once(run_script):
    run = run_script(
        """
        import time
        import atune as tune
        from atune.executors import RayExecutor

        def train(config):
            tune.report({"a": 1})

        start = time.monotonic()
        try:
            tune.Tuner(
                train,
                tune_config=tune.TuneConfig(executor=RayExecutor(address="127.0.0.1:1")),
            ).fit_sync()
        except tune.TuneError as exc:
            print("ERROR:", exc)
        print(f"SECONDS: {time.monotonic() - start:.1f}")
        """,
        timeout=120,
    )
    assert run.returncode == 0, run.explain()
    assert "ERROR: could not connect to the Ray cluster at '127.0.0.1:1'" in run.stdout
    assert "ConnectionRefusedError" in run.stdout and "RAY_ADDRESS" in run.stdout
    seconds = float(run.stdout.split("SECONDS: ")[1])
    assert seconds < 10, run.explain()  # Ray itself retries for minutes


def test_bad_ray_init_arguments_name_themselves(run_script):
    run = run_script(
        """
        import atune as tune
        from atune.executors import RayExecutor

        def train(config):
            tune.report({"a": 1})

        try:
            tune.Tuner(
                train, tune_config=tune.TuneConfig(executor=RayExecutor(num_cpus=-3))
            ).fit_sync()
        except tune.TuneError as exc:
            print("ERROR:", exc)
        """,
        timeout=120,
    )
    assert run.returncode == 0, run.explain()
    assert "ERROR: could not start a local Ray (ValueError:" in run.stdout, run.explain()
    assert "ray.init(num_cpus=-3)" in run.stdout


def test_unpicklable_config_and_parameters_are_named(run_script):
    run = run_script(
        """
        import threading
        import atune as tune

        def train(config, data=None):
            tune.report({"a": 1})

        # A value made on the driver by sample_from: the experiment stops, naming it.
        tuner = tune.Tuner(
            train,
            param_space={"opt": {"lock": tune.sample_from(lambda spec: threading.Lock())}},
            run_config=tune.RunConfig(verbose=0),
        )
        try:
            tuner.fit_sync()
        except tune.TuneError as exc:
            print("CONFIG:", type(exc).__name__, exc)
        (result,) = tuner.get_results()
        print("TRIAL:", type(result.error).__name__)
        try:
            tune.Tuner(
                tune.with_parameters(train, data=threading.Lock()),
                run_config=tune.RunConfig(verbose=0),
            ).fit_sync()
        except tune.TuneError as exc:
            print("PARAMETERS:", type(exc).__name__, exc)
        """,
        timeout=180,
    )
    assert run.returncode == 0, run.explain()
    assert (
        "CONFIG: SerializationError trial train_" in run.stdout
        and "config['opt']['lock'] (a lock) cannot be sent to a Ray worker" in run.stdout
    ), run.explain()
    assert "TRIAL: SerializationError" in run.stdout
    assert "PARAMETERS: SerializationError with_parameters(data=...)" in run.stdout, run.explain()
