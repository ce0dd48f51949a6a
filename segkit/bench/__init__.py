"""Benchmarks: training throughput (:mod:`.train_bench`), the data pipeline
(:mod:`.data_bench`) and model FLOPs (:mod:`.flops`). CLIs: ``tools/benchmark.py``,
``tools/benchmark_data.py``."""
