"""Tests of etok-tools train on the tiny config (runs in seconds on the CPU).

    python3 -m pytest -q python/tests/tools/test_train.py
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

from etok.tools import train
from etok.tools.data import evaluate as ev
from etok.tools.data.sampler import ClipSampler, PrefetchSampler

HP = dict(train.DEFAULTS, lr=3e-3, batch=4, warmup=1)


def smooth_clips(n_clips=6, length=10, size=32, seed=0):
    """Clips of moving smooth colour blobs: learnable in a few steps, not constant."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    frames = []
    for _ in range(n_clips):
        c = rng.uniform(0, 1, (3, 3))
        v = rng.uniform(-0.05, 0.05, 2)
        for t in range(length):
            img = np.stack([c[i, 0] + c[i, 1] * np.sin(6 * (xx + v[0] * t)) *
                            c[i, 2] * np.cos(5 * (yy + v[1] * t)) for i in range(3)], -1)
            frames.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    frames = np.stack(frames)
    starts = np.arange(n_clips) * length
    return frames, starts, np.full(n_clips, length), np.array([0, 1, 2] * (n_clips // 3))


def make_trainer(seed=0):
    torch.set_num_threads(1)
    cfg = train.tiny_config()
    f, s, l, k = smooth_clips()
    sampler = ClipSampler(f, s, l, k, cfg.context_blocks, seed=seed)
    return train.Trainer(cfg, sampler, HP, torch.device("cpu"), seed=seed)


def test_loss_falls_on_a_fixed_batch():
    tr = make_trainer()
    batch = tr.sampler.batch(4)
    keep = torch.full((4, tr.cfg.context_blocks), tr.cfg.max_toks)
    with torch.no_grad():
        before = float(tr.loss_on(batch, keep))
    for _ in range(30):
        tr.step(batch)
    with torch.no_grad():
        after = float(tr.loss_on(batch, keep))
    assert after < 0.5 * before, (before, after)


def test_fewer_kept_tokens_do_not_help_after_training():
    tr = make_trainer()
    batch = tr.sampler.batch(4)
    for _ in range(40):
        tr.step(batch)
    k = tr.cfg.context_blocks
    with torch.no_grad():
        full = float(tr.loss_on(batch, torch.full((4, k), tr.cfg.max_toks)))
        few = float(tr.loss_on(batch, torch.full((4, k), tr.cfg.min_toks)))
    assert few > full


def test_checkpoint_resume_repeats_the_next_step_exactly(tmp_path):
    a = make_trainer()
    for _ in range(3):
        a.step()
    path = str(tmp_path / "ckpt.pt")
    a.save(path)
    assert not os.path.exists(path + ".tmp")
    expected = a.step()
    params_a = {n: p.detach().clone() for n, p in a.model.named_parameters()}

    b = make_trainer(seed=7)  # different init and sampler seed: everything must come from disk
    b.load_state(train.load_checkpoint(path))
    got = b.step()
    assert got["loss"] == expected["loss"]
    assert b.step_count == a.step_count and b.samples == a.samples
    for n, p in b.model.named_parameters():
        assert torch.equal(p, params_a[n]), n


def test_lr_warms_up_then_cools_down_to_zero():
    tr = make_trainer()
    tr.hp = dict(tr.hp, lr=1e-3, warmup=10)
    assert tr.lr_at(0) == pytest.approx(1e-4)
    assert tr.lr_at(50) == pytest.approx(1e-3)
    tr.cooldown = (100, 20)
    assert tr.lr_at(110) == pytest.approx(5e-4)
    tr.step_count = 120
    assert tr.cooldown_done()


def test_export_loads_back_with_the_same_reconstruction(tmp_path):
    safetensors_io = pytest.importorskip("etok.tools.reference.safetensors_io")
    tr = make_trainer()
    for _ in range(3):
        tr.step()
    path = str(tmp_path / "m.safetensors")
    safetensors_io.export(tr.model, tr.cfg, path, dtype="float16", name="test")
    cfg, loaded = safetensors_io.load(path)
    assert cfg.to_dict() == tr.cfg.to_dict()
    m = copy.deepcopy(tr.model).eval()
    x = torch.from_numpy(tr.sampler.batch(2))
    from etok.tools.reference.model import patchify
    v = patchify(x, cfg)
    keep = torch.full((2, cfg.context_blocks), cfg.max_toks)
    with torch.no_grad():
        r0 = m(v, keep)[0]
        r1 = loaded(v, keep)[0]
    assert (r0 - r1).abs().max() < 2e-2  # fp16 weights
    for n, p in m.named_parameters():
        q = dict(loaded.named_parameters())[n]
        assert torch.equal(q, p.detach().half().float()), n


def test_sampler_sequences_come_from_one_clip_in_order():
    f, s, l, k = smooth_clips()
    # Tag every frame with its index so the sequences can be read back.
    tagged = np.zeros_like(f)
    tagged[:, 0, 0, 0] = np.arange(len(f)) % 256
    smp = ClipSampler(tagged, s, l, k, 4, seed=3, p_flip=0.0)
    for seq in smp.batch(64):
        idx = seq[:, 0, 0, 0].astype(int)
        steps = np.diff(idx)
        assert len(set(idx // 10)) == 1, idx          # one clip
        assert len(set(steps)) == 1 and 1 <= abs(steps[0]) <= 3, idx  # one stride


def test_prefetching_sampler_gives_the_same_batches_and_resumable_state():
    f, s, l, k = smooth_clips()
    plain = ClipSampler(f, s, l, k, 4, seed=5)
    ahead = PrefetchSampler(ClipSampler(f, s, l, k, 4, seed=5), depth=3)
    for _ in range(3):
        np.testing.assert_array_equal(ahead.batch(8), plain.batch(8))
    # The producer has drawn ahead by now; state() must still be the state before the next batch
    # handed out, so a fresh sampler resumed from it repeats what both give next.
    import time
    time.sleep(0.05)
    resumed = ClipSampler(f, s, l, k, 4, seed=999)
    resumed.set_state(ahead.state())
    want = plain.batch(8)
    np.testing.assert_array_equal(resumed.batch(8), want)
    np.testing.assert_array_equal(ahead.batch(8), want)
    with pytest.raises(RuntimeError):
        ahead.set_state(plain.state())
    with pytest.raises(ValueError):
        ahead.batch(4)


def test_psnr_and_ssim_match_definitions():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    mse = ((a.astype(float) - b) ** 2).reshape(2, -1).mean(1)
    assert np.allclose(ev.psnr(a, b), 10 * np.log10(255 ** 2 / mse))
    assert np.allclose(ev.ssim(a, a), 1.0, atol=1e-5)
    s = ev.ssim(a, b)
    assert np.all(s < 1.0) and np.all(s > 0.8)


def test_adaptive_search_keeps_more_tokens_for_a_stricter_threshold():
    tr = make_trainer()
    for _ in range(40):
        tr.step()
    tr.model.eval()
    f, _, _, _ = smooth_clips(n_clips=3, length=8, seed=5)
    res = ev.adaptive(tr.model, tr.cfg, f, [1e-6, 10.0], torch.device("cpu"))
    strict, loose = res[1e-6], res[10.0]
    assert loose["mean_keep"] == tr.cfg.min_toks and loose["share_met"] == 1.0
    assert strict["mean_keep"] >= loose["mean_keep"]
    assert strict["mean_keep"] == tr.cfg.max_toks  # 1e-6 is out of reach: max, unmet
    assert strict["share_met"] == 0.0


def test_fixed_budget_reports_psnr_by_chunk_position_and_the_context_gain():
    cfg = train.tiny_config()
    k, m = cfg.context_blocks, cfg.max_toks

    class FirstBlockNoisier(torch.nn.Module):
        """A stand-in model: the input back, with 4x more noise in each chunk's first block."""
        def forward(self, x, keep):
            g = torch.Generator().manual_seed(0)
            noise = torch.randn(x.shape, generator=g) * 0.02
            scale = torch.ones(x.shape[1])
            scale[:m] = 4.0
            return x + noise * scale[None, :, None], None, None

    f, _, _, _ = smooth_clips(n_clips=2, length=2 * k, seed=1)
    res = ev.fixed_budget(FirstBlockNoisier(), cfg, f, [m], torch.device("cpu"))[m]
    recon = ev.reconstruct(FirstBlockNoisier(), cfg, f, m, torch.device("cpu"))
    p = ev.psnr(f, recon)
    pos = np.arange(len(f)) % k
    assert np.allclose(res["psnr_by_position"], [p[pos == j].mean() for j in range(k)])
    assert res["context_gain"] == pytest.approx(p[pos > 0].mean() - p[pos == 0].mean())
    assert res["context_gain"] > 6.0  # 4x the noise amplitude: about 12 dB before rounding


def test_weights_parts_round_trip_with_counters(tmp_path):
    a = make_trainer()
    for _ in range(2):
        a.step()
    paths = a.save_weights(str(tmp_path / "w"), part_bytes=20_000)
    assert len(paths) > 1  # split into parts
    b = make_trainer(seed=5)
    b.load_weights(paths)
    assert (b.step_count, b.samples) == (a.step_count, a.samples)
    for n, p in a.model.named_parameters():
        assert torch.equal(dict(b.model.named_parameters())[n], p), n
    b.hp = dict(b.hp, warmup=10)
    assert b.lr_at(b.step_count) == pytest.approx(b.hp["lr"] / 10)  # warm-up restarts


def write_dataset(path, frames, starts, lens, kinds):
    import json
    from etok.tools.data import framecodec
    meta = {"size": list(frames.shape[1:3]), "frames": len(frames), "sources": []}
    np.savez(path, video=np.frombuffer(framecodec.encode(frames), np.uint8),
             clip_start=starts, clip_len=lens, clip_source=np.zeros(len(lens), np.int32),
             clip_kind=kinds.astype(np.int8), meta=np.array(json.dumps(meta)))


def test_command_line_trains_resumes_evaluates_and_exports(tmp_path):
    pytest.importorskip("etok.tools.reference.safetensors_io")
    f, s, l, k = smooth_clips()
    data, evald = str(tmp_path / "train.npz"), str(tmp_path / "eval.npz")
    write_dataset(data, f, s, l, k)
    write_dataset(evald, f[:10], np.array([0]), np.array([10]), np.array([0]))
    common = ["--tiny", "--out", str(tmp_path), "--data", data, "--eval-data", evald,
              "--run", "t", "--threads", "1", "--batch", "2", "--log-every", "1"]
    assert train.main(common + ["--steps", "3"]) == 0
    assert train.main(common + ["--steps", "5", "--prefetch", "on"]) == 0  # resumes at 3, stops at 5
    ck = train.load_checkpoint(str(tmp_path / "runs" / "t" / "ckpt.pt"))
    assert ck["step"] == 5 and ck["samples"] == 10
    out = str(tmp_path / "m.safetensors")
    assert train.main(common + ["--eval-only", "--export", out]) == 0
    assert os.path.getsize(out) > 0
    import json
    lines = open(tmp_path / "runs" / "t" / "eval.jsonl").read().splitlines()
    res = json.loads(lines[-1])
    assert res["step"] == 5 and set(res["fixed"]) == {"2", "4", "8", "16"}
    log = open(tmp_path / "runs" / "t" / "train.log").read()
    assert "resumed" in log and "samples/s" in log


def test_init_from_starts_with_the_source_runs_hyperparameters(tmp_path):
    f, s, l, k = smooth_clips()
    data = str(tmp_path / "train.npz")
    write_dataset(data, f, s, l, k)
    common = ["--tiny", "--out", str(tmp_path), "--data", data, "--eval-data", str(tmp_path / "none.npz"),
              "--threads", "1", "--log-every", "1"]
    assert train.main(common + ["--run", "a", "--steps", "2", "--lr", "5e-4", "--batch", "2",
                                "--full-keep", "0.3"]) == 0
    assert train.main(common + ["--run", "b", "--init-from", "a", "--steps", "3"]) == 0
    hp_b = train.load_checkpoint(str(tmp_path / "runs" / "b" / "ckpt.pt"))["hp"]
    assert (hp_b["lr"], hp_b["batch"], hp_b["full_keep"]) == (5e-4, 2, 0.3)
    assert train.main(common + ["--run", "c", "--init-from", "a", "--steps", "3", "--lr", "2e-4"]) == 0
    ck_c = train.load_checkpoint(str(tmp_path / "runs" / "c" / "ckpt.pt"))
    assert ck_c["hp"]["lr"] == 2e-4 and ck_c["hp"]["batch"] == 2 and ck_c["step"] == 3
    with pytest.raises(SystemExit):
        train.main(common + ["--run", "d", "--init-from", "missing", "--steps", "3"])


def test_lossless_frame_codec_round_trips_exactly():
    from etok.tools.data import framecodec
    f, _, _, _ = smooth_clips(n_clips=3, length=4)
    data = framecodec.encode(f, lossless=True)
    assert np.array_equal(framecodec.decode(data, len(f), 32, 32), f)
    with pytest.raises(framecodec.FrameCodecError):
        framecodec.decode(data, len(f) + 1, 32, 32)


def test_synthetic_pan_moves_the_picture_by_about_its_speed():
    from etok.tools.data import synth
    rng = np.random.default_rng(0)
    yy, xx = torch.meshgrid(torch.arange(320.0), torch.arange(480.0), indexing="ij")
    photo = torch.stack([(torch.sin(xx / 7) * torch.cos(yy / 9) + 1) / 2] * 3)
    clip = synth.make_clip(rng, photo, photo, frames=4, size=64, motion="pan")
    assert clip.shape == (4, 64, 64, 3) and clip.dtype == np.uint8
    assert not np.array_equal(clip[0], clip[-1])  # it moves
    static = synth.make_clip(np.random.default_rng(1), photo, photo, 4, 64, "static")
    assert all(np.array_equal(static[0], s) for s in static)  # "static" does not


def test_sampler_gives_each_source_of_a_kind_an_equal_share():
    # Source 0: one long clip; source 1: one short clip; same kind.
    frames = np.zeros((110, 32, 32, 3), np.uint8)
    frames[:, 0, 0, 0] = np.r_[np.zeros(100), np.ones(10)]
    smp = ClipSampler(frames, [0, 100], [100, 10], [0, 0], 4, seed=0, p_flip=0.0,
                      clip_source=[0, 1])
    share_short = (smp.batch(2000)[:, 0, 0, 0, 0] == 1).mean()
    assert 0.45 < share_short < 0.55


def test_full_keep_share_of_blocks_keeps_every_token():
    tr = make_trainer()
    cfg = tr.cfg
    plain = tr.draw_keep(4000)
    assert (plain == cfg.max_toks).float().mean() < 0.1  # uniform: max is one value of many
    tr.hp = dict(tr.hp, full_keep=0.4)
    keep = tr.draw_keep(4000)
    share = (keep == cfg.max_toks).float().mean().item()
    uniform_share = 1 / (cfg.max_toks - cfg.min_toks + 1)
    assert abs(share - (0.4 + 0.6 * uniform_share)) < 0.03
    assert keep.min() >= cfg.min_toks and keep.max() <= cfg.max_toks


def test_context_keep_share_of_sequences_starts_full_then_falls():
    tr = make_trainer()
    cfg = tr.cfg
    tr.hp = dict(tr.hp, context_keep=0.5)
    keep = tr.draw_keep(4000)
    pattern = (keep[:, 0] == cfg.max_toks) & (keep[:, 1:] <= keep[:, :-1]).all(dim=1)
    # Half the sequences by construction, plus the few independent draws that happen to match.
    chance = 1 / (cfg.max_toks - cfg.min_toks + 1)
    assert 0.47 < pattern.float().mean().item() < 0.5 + 0.5 * chance * 0.5 + 0.03
    assert keep.min() >= cfg.min_toks and keep.max() <= cfg.max_toks
    later = keep[pattern][:, 1:]
    assert later.float().mean() < cfg.max_toks  # the later blocks are not all full


def test_cooldown_minutes_ends_the_run_with_the_lr_at_zero(tmp_path):
    f, s, l, k = smooth_clips()
    data = str(tmp_path / "train.npz")
    write_dataset(data, f, s, l, k)
    common = ["--tiny", "--out", str(tmp_path), "--data", data, "--eval-data", str(tmp_path / "none.npz"),
              "--run", "c", "--threads", "1", "--batch", "2", "--log-every", "1"]
    assert train.main(common + ["--minutes", "0.05", "--cooldown-minutes", "0.025"]) == 0
    ck = train.load_checkpoint(str(tmp_path / "runs" / "c" / "ckpt.pt"))
    start, n = ck["cooldown"]
    assert n >= 1 and start >= 1
    log = open(tmp_path / "runs" / "c" / "train.log").read()
    assert "cool-down: lr -> 0" in log


def test_a_failing_compiled_forward_falls_back_to_eager_with_the_same_loss():
    tr = make_trainer()
    ref = make_trainer()
    def broken(*_a, **_k):
        raise RuntimeError("no compiler here")
    tr.fwd = broken  # what a torch.compile wrapper that fails at its first call looks like
    out = tr.step()
    assert tr.fwd is tr.model and "no compiler here" in tr.compile_error
    assert out["loss"] == ref.step()["loss"]  # same seed, same batch, eager both times


@pytest.mark.skipif(not os.environ.get("ETOK_SLOW_TESTS"), reason="compiles for ~1 min; ETOK_SLOW_TESTS=1")
def test_compiled_training_matches_eager_on_the_first_step():
    tr = train.Trainer(train.tiny_config(), make_trainer().sampler, HP, torch.device("cpu"), compile=True)
    ref = make_trainer()
    out = tr.step()
    assert tr.compile_error is None and tr.fwd is not tr.model
    assert out["loss"] == pytest.approx(ref.step()["loss"], rel=1e-3)


def test_a_resumed_run_keeps_the_training_set_it_started_on(tmp_path):
    run = tmp_path / "runs" / "r"
    assert train.run_data_name(None) == "train-v3.npz"  # new run: the newest version
    run.mkdir(parents=True)
    torch.save({"step": 3}, run / "ckpt.pt")  # from before v3: such runs trained on v2
    assert train.run_data_name(train.load_checkpoint(str(run / "ckpt.pt"))) == "train-v2.npz"
    tr = make_trainer()
    tr.data_name = "train-v1.npz"
    torch.save(tr.state(), run / "ckpt.pt")
    assert train.run_data_name(train.load_checkpoint(str(run / "ckpt.pt"))) == "train-v1.npz"
    other = make_trainer()
    other.load_state(train.load_checkpoint(str(run / "ckpt.pt")))
    assert other.data_name == "train-v1.npz"
