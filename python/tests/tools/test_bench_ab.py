"""etok-tools bench ab: alternating runs of two binaries, medians, and what each produced."""

FAKE = """#!/usr/bin/env python3
import json, sys, time
args = sys.argv[1:]
stats = args[args.index("--stats") + 1]
with open({log!r}, "a") as f:
    f.write({name!r} + "\\n")
time.sleep({sleep})
json.dump({{"mean_tokens": {tokens}, "share_meeting_threshold": 0.8,
           "per_block": [{{"evaluations": 3}}, {{"evaluations": 4}}]}}, open(stats, "w"))
"""


def fake(tmp_path, name, sleep, tokens, log):
    path = tmp_path / name
    path.write_text(FAKE.format(log=str(log), name=name, sleep=sleep, tokens=tokens))
    path.chmod(0o755)
    return str(path)


def test_runs_alternate_and_the_ratio_is_of_medians(tmp_path, tool):
    log = tmp_path / "order.txt"
    a = fake(tmp_path, "slow", 0.3, 142.3, log)
    b = fake(tmp_path, "fast", 0.1, 142.7, log)
    out = tool("bench", "ab", "--a", a, "--b", b, "--runs", "3", "--clips", "x.mp4", check=True).stdout
    assert log.read_text().split() == ["slow", "fast"] * 3
    row = [line for line in out.splitlines() if line.startswith("| x.mp4")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    a_s, b_s, ratio = float(cells[1]), float(cells[2]), float(cells[3].rstrip("×"))
    assert a_s > b_s and 1.5 < ratio < 4.5
    assert cells[4] == "142.3 tok, 3.50 eval, 80%" and cells[5] == "142.7 tok, 3.50 eval, 80%"


def test_a_missing_binary_is_a_one_line_error(tmp_path, tool):
    r = tool("bench", "ab", "--a", tmp_path / "nope", "--b", tmp_path / "nope")
    assert r.returncode == 2 and "no such binary" in r.stderr and r.stderr.count("\n") == 1
