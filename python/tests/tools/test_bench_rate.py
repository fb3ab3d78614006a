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


def test_row_counts_repeat_blocks_in_its_own_column():
    per_block = blocks([0, 0.04, 0.08, 0.12], [50, 0, 0, 40])
    for b in per_block:
        b.update(passes=1, evaluations=1)
    per_block[1]["repeat"] = per_block[2]["repeat"] = True
    s = {"frames": 4, "tokens": 90, "per_block": per_block, "share_meeting_threshold": 1.0, "wall": 1.0}
    cells = [c.strip() for c in bench_rate.row("x/clip.mp4", "default", s).split("|")[1:-1]]
    assert cells[:6] == ["clip.mp4", "default", "4", "90", "22.5", "2"]
    del per_block[1]["repeat"], per_block[2]["repeat"]   # a --no-repeat or 1.1 summary: no key
    assert bench_rate.repeats(s) == 0


def test_bar_line_needs_both_the_mean_and_a_higher_worst_frame():
    def summary(psnrs):
        return {"per_block": [{"psnr": p} for p in psnrs]}
    fixed = summary([20.0, 22.0, 24.0])                            # mean 22.00, worst 20.00
    modes = [("both", summary([20.5, 22.5, 24.0])),                # +0.33 / +0.5: holds
             ("mean only", summary([19.0, 23.0, 25.0])),           # +0.33 / -1.0
             ("worst only", summary([20.1, 22.0, 24.0])),          # +0.03 / +0.1
             ("equal worst", summary([20.0, 23.0, 24.0]))]         # +0.33 / 0: not higher
    line = bench_rate.bar_line("x/clip.mp4", 100, fixed, modes)
    assert line.startswith("- clip.mp4: --fixed 100 22.00 / 20.00; ")
    verdicts = [part.rsplit("bar ", 1)[1].rstrip(")") for part in line.split("; ")[1:]]
    assert verdicts == ["holds", "missed", "missed", "missed"]
    assert "both 22.33 / 20.50 (+0.33 / +0.50, bar holds)" in line
