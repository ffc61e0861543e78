"""atune's benchmarks: ``python -m benchmarks`` runs atune and Ray Tune side by side.

See ``benchmarks/README.md`` for what each measures and the recorded figures.
"""
