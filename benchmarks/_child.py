"""One workload, one library, one fresh process: ``python -m benchmarks._child``.

    python -m benchmarks._child WORKLOAD LIB PARAMS_JSON OUT_JSON [--num-cpus N] [--no-loggers]

Starts a local Ray (``ray.init(num_cpus=N)``, as a user's script would), runs the workload
of :mod:`benchmarks._workloads` with the library's defaults in a fresh storage
directory, and writes its figures to ``OUT_JSON``. Everything the libraries print goes
to this process's stdout and stderr, which the suite keeps in a log file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._child")
    parser.add_argument("workload")
    parser.add_argument("lib")
    parser.add_argument("params")
    parser.add_argument("out")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-loggers", action="store_true")
    args = parser.parse_args(argv)
    if args.no_loggers:  # both libraries read this variable
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    started = time.perf_counter()
    import ray

    from benchmarks import _workloads
    from benchmarks._libs import Lib

    lib = Lib(args.lib)
    ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    storage = tempfile.mkdtemp(prefix=f"bench-{args.lib}-")
    try:
        figures = getattr(_workloads, args.workload)(lib, storage, **json.loads(args.params))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        ray.shutdown()
    figures["process_seconds"] = time.perf_counter() - started
    figures["version"] = lib.version
    with open(args.out, "w") as f:
        json.dump(figures, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
