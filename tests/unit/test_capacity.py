from __future__ import annotations

from swapline.evaluation.capacity import capacity_markdown, plan

COSTS = {
    "decode": {"ms_per_frame_p50": 2.0},
    "detect": {"ms_per_frame_p50": 10.0},
    "align": {"ms_per_frame_p50": 3.0, "ms_per_face_p50": 3.0},
    "swap": {"ms_per_frame_p50": 5.0, "ms_per_face_p50": 5.0},
    "blend": {"ms_per_frame_p50": 2.0, "ms_per_face_p50": 2.0},
    "encode": {"ms_per_frame_p50": 40.0},
}


def test_replicas_follow_the_measured_costs() -> None:
    needs, gpus, bottleneck = plan(COSTS, streams=10, gpu_faces_per_second=3000)
    by_service = {n.service: n for n in needs}
    # 300 frames/s x (2 + 40) ms = 12.6 cores; 2 cores per replica at 70% -> 9.
    assert by_service["encoder"].cores == 12.6 and by_service["encoder"].replicas == 9
    # 300 x 10 ms = 3 cores; 1 core per replica at 70% -> 5.
    assert by_service["detector"].replicas == 5
    assert gpus == 1 and bottleneck == "encoder"
    many, gpus_many, _ = plan(COSTS, streams=100, gpu_faces_per_second=3000)
    assert gpus_many == 2  # 3000 faces/s against 70% of 3000 per GPU
    assert {n.service for n in many} == set(by_service)


def test_faces_per_frame_scale_the_per_face_stages() -> None:
    one = {n.service: n.cores for n in plan(COSTS, 10)[0]}
    two = {n.service: n.cores for n in plan(COSTS, 10, faces_per_frame=2)[0]}
    assert two["aligner"] == 2 * one["aligner"] and two["detector"] == one["detector"]
    assert two["swapper (CPU ONNX)"] == 2 * one["swapper (CPU ONNX)"]


def test_markdown_names_each_stream_count_and_the_missing_gpu_measurement() -> None:
    text = capacity_markdown({"stage_costs_1080p": COSTS, "date": "d", "machine": "m"}, (1, 10))
    assert "## 1 concurrent 1080p30 stream " in text and "## 10 concurrent" in text
    assert "No GPU measurement yet" in text and "Bottleneck: **encoder**" in text
    with_gpu = capacity_markdown(
        {"stage_costs": COSTS}, (10,), {"triton_faces_per_second_best": 3000}
    )
    assert "| Triton (GPUs) | | | 1 |" in with_gpu
