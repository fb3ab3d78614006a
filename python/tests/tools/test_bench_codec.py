"""etok-tools bench codec's search for the smallest fixed budget that matches elastic's share."""
from etok.tools.bench import codec as bench_codec


def test_smallest_matching_budget_is_found_to_the_token_between_grid_points():
    def share(b):  # rises by steps: 80% from 197 tokens on, as bikes.mp4 did at 23.81 dB
        return 0.8 if b >= 197 else 0.79 if b >= 192 else 0.5
    grid = [64, 128, 160, 192, 224, 256]
    asked = []

    def share_at(b):
        asked.append(b)
        return share(b)
    found = bench_codec.smallest_matching_budget({b: share(b) for b in grid}, 0.8, share_at)
    assert found == 197
    assert all(192 < b < 224 for b in asked) and len(asked) <= 5  # bisection inside one gap
    # At or below the first grid point, and out of reach.
    assert bench_codec.smallest_matching_budget({b: share(b) for b in grid}, 0.4, share_at) == 64
    assert bench_codec.smallest_matching_budget({b: share(b) for b in grid}, 0.9, share_at) is None
