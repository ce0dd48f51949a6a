"""Benchmarks: training throughput (:mod:`.train_bench`, ``tools/benchmark.py``), the
data pipeline (:mod:`.data_bench`, ``tools/benchmark_data.py``) and model FLOPs
(:mod:`.flops`).

GPU measurements of the performance targets (one H100; JSON under work_dirs/bench)::

    B=work_dirs/bench; mkdir -p $B
    SF_STOCK=mmseg::segformer/segformer_mit-b2_8xb2-160k_ade20k-512x512.py
    SF_OURS=configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512_amp.py
    M2F_STOCK=mmseg::mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py
    M2F_OURS=configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512_amp.py
    # 1. ours vs stock fp32, same crop (512) and batch (ours: 6 / 4 per GPU; stock: 2)
    python tools/benchmark.py $SF_STOCK --synthetic --batch 6 --iters 50 --warmup 10 \\
        --compare $SF_OURS --json $B/segformer_b6.json
    python tools/benchmark.py $M2F_STOCK --synthetic --batch 4 --iters 50 --warmup 10 \\
        --compare $M2F_OURS --json $B/mask2former_b4.json
    # 2. largest batch per GPU (ours, then stock for reference)
    python tools/benchmark.py $SF_OURS --synthetic --find-max-batch --json $B/segformer_max.json
    python tools/benchmark.py $M2F_OURS --synthetic --find-max-batch --json $B/m2f_max.json

The table prints img/s, the B/A ratio (target >= 2.0x), peak memory (target B/A <=
1.0x) and SegFormer-B2's achieved TFLOP/s (H100 dense bf16 peak ~798).
"""
