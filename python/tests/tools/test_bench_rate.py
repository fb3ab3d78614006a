"""etok-tools bench rate's bookkeeping: the media time rule (etok's coveredSeconds) and the per-chunk sums."""
from etok.tools.bench import rate as bench_rate


def blocks(times, kept=None):
    kept = kept or [1] * len(times)
    return [{"block": i, "seconds": t, "kept": k, "mse": 0.01, "psnr": 26.0} for i, (t, k) in enumerate(zip(times, kept))]


def test_media_seconds_adds_one_mean_interval():
    # 250 frames at 25 fps cover 10 s, not 9.96.
    assert abs(bench_rate.media_seconds(blocks([i / 25 for i in range(250)]), 1 / 25) - 10.0) < 1e-9
    # Irregular times: the span times n / (n - 1).
    assert abs(bench_rate.media_seconds(blocks([0, 1, 5]), 1) - 7.5) < 1e-9
    assert bench_rate.media_seconds(blocks([3.0]), 0.04) == 0.04


def test_largest_chunk_sums_blocks_of_four():
    s = {"per_block": blocks([0] * 6, [10, 20, 30, 40, 90, 5])}
    assert bench_rate.largest_chunk(s) == 100
    s = {"per_block": blocks([0] * 6, [10, 20, 30, 40, 200, 5])}
    assert bench_rate.largest_chunk(s) == 205
