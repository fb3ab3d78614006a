"""Trains etok's ElasticTok model; one command starts or resumes a run.

    etok-tools train --run default                 # start or resume (runs until stopped)
    etok-tools train --run default --minutes 30    # ... for 30 minutes, then checkpoint
    etok-tools train --run default --eval-only     # held-out evaluation now (eval.jsonl)
    etok-tools train --run default --export out.safetensors   # fp16 model file
    etok-tools train --run cool --init-from default --cooldown-steps 2000   # cool-down branch

Objective (ElasticTok): sequences of K one-frame blocks (K = the config's context), block-causal
attention; per block a kept count n ~ U[min_toks, max_toks]; tokens past n are masked (encoder
gets is_masked_embed, decoder z = 0); FSQ with straight-through rounding; loss = MSE on pixels in
[-1, 1] over every token. AdamW, linear warm-up then constant LR (optional linear cool-down to
zero), gradient clipping, bf16 autocast (CPU and CUDA).

Run state lives in <out>/runs/<run>/ (default ~/.cache/etok/runs/<run>/): ckpt.pt (weights,
optimiser, step, samples, data-sampler and RNG states; written atomically every --ckpt-minutes),
train.log (loss, lr, samples/s), eval.jsonl (held-out results). A missing checkpoint starts from
--init-from RUN, else from the shipped weights (Sources/EtokTokenizer/Resources/default.safetensors),
else from random init. SIGTERM/SIGINT checkpoint and exit; touching <run dir>/EVAL_NOW makes a
running job evaluate at its next step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time

# OpenMP threads that spin while waiting make a 2-thread job ~6x slower when the 2 cores are
# shared with other work (measured here: 21 s vs 3.3 s per batch-2 step under load); sleeping
# waiters cost nothing measurable on a quiet machine. Must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from .common import SHIPPED  # noqa: E402
from .data import evaluate as ev  # noqa: E402
from .data.sampler import ClipSampler, PrefetchSampler  # noqa: E402
from .reference.config import ElasticTokConfig  # noqa: E402
from .reference.model import ElasticTok, flat_to_state, patchify  # noqa: E402
DEFAULTS = {"lr": 1e-3, "batch": 8, "warmup": 500, "weight_decay": 0.01, "clip": 1.0,
            "beta2": 0.99, "full_keep": 0.0, "context_keep": 0.0}
EVAL_FRACTIONS = ("min", 0.25, 0.5, 1.0)
EVAL_THRESHOLDS = (0.003, 0.006, 0.012)


def default_out() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "etok")


def tiny_config() -> ElasticTokConfig:
    """A config small enough for tests: 32x32 frames, 16 tokens per frame, 1+1 layers."""
    return ElasticTokConfig(hidden_size=32, intermediate_size=64, num_encoder_layers=1,
                            num_decoder_layers=1, num_attention_heads=2, patch_size=(1, 8, 8),
                            frames_per_block=1, min_toks=2, max_toks=16, max_sequence_length=64,
                            etok_image_size=(32, 32))


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """Owns the model, optimiser, sampler and RNGs of one run; `step()` does one update.

    Not thread-safe. Deterministic given the seed and the thread count: `state()` captures all
    that the next step depends on, so `load_state()` + `step()` repeats it bit for bit.
    """

    def __init__(self, cfg: ElasticTokConfig, sampler: ClipSampler, hp: dict, device,
                 seed: int = 0, amp: bool = True, compile: bool = False):
        self.cfg, self.sampler, self.hp, self.device, self.amp = cfg, sampler, dict(hp), device, amp
        torch.manual_seed(seed)
        self.model = ElasticTok(cfg).to(device)
        self.model.set_attention_impl("blockwise")
        self.model.train()
        # The training forward: the model itself, or torch.compile's wrapper of it (same
        # parameters). A compile failure at the first step falls back to eager (compile_error).
        self.fwd = torch.compile(self.model) if compile else self.model
        self.compile_error = None
        decay, no_decay = [], []
        for n, p in self.model.named_parameters():
            (decay if p.dim() >= 2 and "embed" not in n else no_decay).append(p)
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp["weight_decay"]},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=hp["lr"], betas=(0.9, hp["beta2"]), eps=1e-8)
        self.keep_gen = torch.Generator().manual_seed(seed + 1)
        self.step_count = 0
        self.samples = 0
        self.train_seconds = 0.0
        self.cooldown = None  # (start step, steps)
        self.warm_start = 0  # step the current warm-up began (fresh optimiser state)
        self.init_note = "random init"
        self.data_name = None  # the training set's file name: a resumed run keeps its data

    # ------------------------------------------------------------------ schedule
    def lr_at(self, step: int) -> float:
        lr = self.hp["lr"] * min(1.0, (step - self.warm_start + 1) / max(1, self.hp["warmup"]))
        if self.cooldown is not None:
            start, n = self.cooldown
            lr *= max(0.0, 1.0 - (step - start) / max(1, n))
        return lr

    def cooldown_done(self) -> bool:
        return self.cooldown is not None and self.step_count >= self.cooldown[0] + self.cooldown[1]

    # ---------------------------------------------------------------------- step
    def loss_on(self, frames_u8: np.ndarray, keep: torch.Tensor) -> torch.Tensor:
        x = patchify(torch.from_numpy(frames_u8).to(self.device), self.cfg)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            try:
                recon, _, _ = self.fwd(x, keep.to(self.device))
            except Exception as e:  # only a compiled forward may fail here and fall back
                if self.fwd is self.model:
                    raise
                self.compile_error = f"{type(e).__name__}: {e}"[:300]
                self.fwd = self.model
                recon, _, _ = self.model(x, keep.to(self.device))
        return F.mse_loss(recon.float(), x)

    def draw_keep(self, b: int) -> torch.Tensor:
        k = self.cfg.context_blocks
        keep = torch.randint(self.cfg.min_toks, self.cfg.max_toks + 1, (b, k),
                             generator=self.keep_gen)
        p_full = self.hp.get("full_keep", 0.0)
        if p_full > 0:
            # Uniform n keeps token p only (max-p)/(max-min+1) of the time, so the last tokens are
            # almost never trained and, at inference, adding them made the error *rise* (measured:
            # 29.8 dB at 192 tokens, 27.4 dB at 256). Keeping every token in a share of blocks
            # trains the tail with the rest.
            full = torch.rand((b, k), generator=self.keep_gen) < p_full
            keep = torch.where(full, torch.full_like(keep, self.cfg.max_toks), keep)
        p_ctx = self.hp.get("context_keep", 0.0)
        if p_ctx > 0 and k > 1:
            # The pattern the encoder's search produces on steady footage: a full first block,
            # then falling budgets that must draw on the earlier frames. Independent draws give
            # it rarely, and the shipped model gains nothing from its context at equal budgets
            # (docs/model.md); a share of sequences get it outright.
            pattern = torch.sort(keep, dim=1, descending=True).values
            pattern[:, 0] = self.cfg.max_toks
            pick = torch.rand((b, 1), generator=self.keep_gen) < p_ctx
            keep = torch.where(pick, pattern, keep)
        return keep

    def step(self, frames_u8: np.ndarray = None) -> dict:
        """One update on `frames_u8` (B, K, H, W, 3), or on the sampler's next batch."""
        if frames_u8 is None:
            frames_u8 = self.sampler.batch(self.hp["batch"])
        keep = self.draw_keep(len(frames_u8))
        lr = self.lr_at(self.step_count)
        for g in self.opt.param_groups:
            g["lr"] = lr
        loss = self.loss_on(frames_u8, keep)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.hp["clip"])
        self.opt.step()
        self.step_count += 1
        self.samples += len(frames_u8)
        return {"loss": float(loss.detach()), "lr": lr, "gnorm": float(gnorm)}

    # ----------------------------------------------------------------- state I/O
    def state(self) -> dict:
        return {"version": 1, "config": self.cfg.to_dict(), "model": self.model.state_dict(),
                "opt": self.opt.state_dict(), "step": self.step_count, "samples": self.samples,
                "train_seconds": self.train_seconds, "hp": self.hp, "cooldown": self.cooldown,
                "sampler": self.sampler.state() if self.sampler else None,
                "keep_gen": self.keep_gen.get_state(), "torch_rng": torch.get_rng_state(),
                "init_note": self.init_note, "warm_start": self.warm_start, "data": self.data_name}

    def load_state(self, st: dict, weights_only: bool = False):
        if ElasticTokConfig.from_dict(st["config"]).to_dict() != self.cfg.to_dict():
            raise ValueError("checkpoint config differs from the run's config")
        self.model.load_state_dict(st["model"])
        if weights_only:
            return
        self.opt.load_state_dict(st["opt"])
        self.step_count, self.samples = st["step"], st["samples"]
        self.train_seconds = st.get("train_seconds", 0.0)
        self.cooldown = tuple(st["cooldown"]) if st.get("cooldown") else None
        if self.sampler is not None and st.get("sampler") is not None:
            self.sampler.set_state(st["sampler"])
        self.keep_gen.set_state(st["keep_gen"])
        torch.set_rng_state(st["torch_rng"])
        self.init_note = st.get("init_note", "")
        self.data_name = st.get("data")
        self.warm_start = st.get("warm_start", 0)

    def counters(self) -> dict:
        return {"step": self.step_count, "samples": self.samples,
                "train_seconds": self.train_seconds, "init_note": self.init_note}

    def save_weights(self, prefix: str, part_bytes: int = 15 * 2**20) -> list:
        """fp32 weights + counters in parts of at most ~`part_bytes` (the GPU tool returns
        files of at most 16 MiB): prefix.part0.pt, prefix.part1.pt, ..."""
        parts, cur, size = [], {}, 0
        for n, t in self.model.state_dict().items():
            t = t.detach().float().cpu()
            if cur and size + t.numel() * 4 > part_bytes:
                parts.append(cur)
                cur, size = {}, 0
            cur[n] = t
            size += t.numel() * 4
        parts.append(cur)
        paths = []
        for i, p in enumerate(parts):
            path = f"{prefix}.part{i}.pt"
            torch.save({"tensors": p, "counters": self.counters(), "config": self.cfg.to_dict(),
                        "parts": len(parts)}, path + ".tmp")
            os.replace(path + ".tmp", path)
            paths.append(path)
        return paths

    def load_weights(self, paths: list):
        """Loads `save_weights` parts: weights and counters; fresh optimiser, new warm-up."""
        state, counters = {}, None
        for p in paths:
            d = torch.load(p, map_location="cpu", weights_only=False)
            if ElasticTokConfig.from_dict(d["config"]).to_dict() != self.cfg.to_dict():
                raise ValueError(f"{p}: another config")
            state.update(d["tensors"])
            counters = d["counters"]
        self.model.load_state_dict(state)
        self.step_count, self.samples = counters["step"], counters["samples"]
        self.train_seconds = counters["train_seconds"]
        self.warm_start = self.step_count
        self.init_note = f"weights from {os.path.basename(paths[0])} ({counters['init_note']})"

    def save(self, path: str):
        """Atomic: written to a temporary file, then renamed over `path`."""
        tmp = path + ".tmp"
        torch.save(self.state(), tmp)
        os.replace(tmp, path)


def load_checkpoint(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


# ------------------------------------------------------------------------------- data
def load_train_sampler(path: str, cfg, seed: int, log) -> ClipSampler:
    from .data import make_dataset
    if not os.path.exists(path):
        log(f"{path} missing: building it (`etok-tools data`)")
        out = os.path.dirname(os.path.dirname(path))
        if os.path.basename(path) != make_dataset.dataset_names()[0]:
            raise SystemExit(f"{path}: no such training set (`etok-tools data` builds <out>/data/"
                             f"{make_dataset.dataset_names()[0]})")
        make_dataset.main(["--out", out])
    t0 = time.time()
    frames, rest, meta = make_dataset.load_frames(path)
    if tuple(meta["size"]) != tuple(cfg.image_size):
        raise SystemExit(f"{path}: frames are {meta['size']}, the model wants {cfg.image_size}")
    log(f"dataset {path}: {len(frames)} frames, {len(rest['clip_len'])} clips "
        f"(decoded in {time.time() - t0:.0f} s)")
    return ClipSampler(frames, rest["clip_start"], rest["clip_len"], rest["clip_kind"],
                       cfg.context_blocks, seed=seed, clip_source=rest.get("clip_source"))


def load_eval_frames(path: str, cfg) -> np.ndarray:
    from .data import make_dataset
    frames, _, meta = make_dataset.load_frames(path)
    if tuple(meta["size"]) != tuple(cfg.image_size):
        raise SystemExit(f"{path}: frames are {meta['size']}, the model wants {cfg.image_size}")
    return frames


# --------------------------------------------------------------------------- evaluate
def run_eval(trainer: Trainer, frames: np.ndarray, fixed_chunks: int, adapt_chunks: int,
             log) -> dict:
    """Held-out numbers in fp32. fixed_chunks / adapt_chunks: how many evenly spaced chunks of
    K frames the fixed-budget and the adaptive evaluations use (0: all). On this CPU a forward
    pass runs at roughly 6 frames/s in fp32 when the cores are shared, so the periodic
    evaluation uses subsets; --eval-only and GPU runs can afford all."""
    cfg, model = trainer.cfg, trainer.model
    was_training = model.training
    model.eval()
    t0 = time.time()
    counts = [cfg.min_toks if f == "min" else int(round(f * cfg.max_toks)) for f in EVAL_FRACTIONS]
    k = cfg.context_blocks
    fixed_frames = ev.subset(frames, k, fixed_chunks)
    fixed = ev.fixed_budget(model, cfg, fixed_frames, counts, trainer.device)
    adapt = ev.adaptive(model, cfg, frames, EVAL_THRESHOLDS, trainer.device,
                        max_chunks=adapt_chunks)
    if was_training:
        model.train()
    res = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "step": trainer.step_count,
           "samples": trainer.samples, "train_hours": round(trainer.train_seconds / 3600, 3),
           "device": str(trainer.device), "frames": len(fixed_frames),
           "adaptive_frames": next(iter(adapt.values()))["frames"],
           "fixed": {str(k): v for k, v in fixed.items()},
           "adaptive": {str(k): v for k, v in adapt.items()},
           "eval_seconds": round(time.time() - t0, 1)}
    parts = [f"{k} tok {v['psnr']:.2f} dB / SSIM {v['ssim']:.3f} (context {v['context_gain']:+.2f} dB)"
             for k, v in fixed.items()]
    ad = [f"thr {k}: mean keep {v['mean_keep']:.0f}, met {v['share_met']:.0%}"
          for k, v in adapt.items()]
    log(f"eval step {trainer.step_count}: " + "; ".join(parts) + " | " + "; ".join(ad)
        + f" ({res['eval_seconds']} s)")
    return res


# ------------------------------------------------------------------------------ main
def build_trainer(args, cfg, sampler, log, saved: dict | None) -> tuple:
    """The trainer for args.run: resumed from `saved` (the run's own checkpoint, loaded once by
    the caller; None: a new run), else initialised from --init-from / --init-weights."""
    run_dir = os.path.join(args.out, "runs", args.run)
    os.makedirs(run_dir, exist_ok=True)
    ckpt = os.path.join(run_dir, "ckpt.pt")
    source = None
    src_ckpt = os.path.join(args.out, "runs", args.init_from, "ckpt.pt") if args.init_from else None
    if saved is None and src_ckpt:
        if not os.path.exists(src_ckpt):
            raise SystemExit(f"etok-tools train: --init-from {args.init_from}: no checkpoint at {src_ckpt}")
        source = load_checkpoint(src_ckpt)
    hp = dict(DEFAULTS)
    # Hyperparameters: the run's own checkpoint, else the run it starts from (--init-from), then
    # the command line. (Before 2026-11-27 --init-from fell back to DEFAULTS: lr 1e-3, batch 8.)
    for st in (saved, source):
        if st is not None:
            hp.update(st.get("hp", {}))
            break
    for k in DEFAULTS:
        v = getattr(args, k)
        if v is not None:
            hp[k] = v
    device = pick_device(args.device)
    tr = Trainer(cfg, sampler, hp, device, seed=args.seed, amp=not args.fp32,
                 compile=args.compile and sampler is not None)
    if saved is not None:
        tr.load_state(saved)
        tr.hp = hp
        log(f"resumed {ckpt} at step {tr.step_count} ({tr.samples} samples, "
            f"{tr.train_seconds / 3600:.2f} h)")
    elif args.init_weights:
        tr.load_weights([os.path.expanduser(p) for p in args.init_weights.split(",")])
        log(f"initialised from {args.init_weights} at step {tr.step_count} (warm-up restarts)")
    elif args.init_from:
        tr.load_state(source)
        tr.hp = hp
        tr.init_note = f"from run {args.init_from} at step {tr.step_count}"
        log(f"initialised from {src_ckpt} (step {tr.step_count})")
    elif os.path.exists(SHIPPED) and not args.tiny:
        from .reference.safetensors_io import load_flat
        scfg, flat, meta = load_flat(SHIPPED)
        if scfg.to_dict() == cfg.to_dict():
            flat_to_state(tr.model, {k: v.float() for k, v in flat.items()})
            tr.init_note = f"from shipped weights {meta.get('name', '')}"
            log(f"initialised from {SHIPPED}")
        else:
            log(f"{SHIPPED} has another config: random init")
    if args.cooldown_steps and tr.cooldown is None:
        tr.cooldown = (tr.step_count, args.cooldown_steps)
        log(f"cool-down: lr -> 0 over steps {tr.step_count}..{tr.step_count + args.cooldown_steps}")
    return tr, run_dir, ckpt


def run_data_name(saved: dict | None) -> str:
    """The training set a run uses when --data is not given: the one its checkpoint `saved`
    trained on (runs from before dataset v3 recorded none: they trained on v2), else, for a new
    run (None), the newest version, train-v3.npz."""
    if saved is None:
        return "train-v3.npz"
    return saved.get("data") or "train-v2.npz"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train / resume / evaluate / export etok's model.")
    ap.add_argument("--run", default="default", help="run name (state in <out>/runs/<run>)")
    ap.add_argument("--out", default=default_out(), help="cache root (~/.cache/etok)")
    ap.add_argument("--data", default=None, help="training set (default: the one the run's checkpoint trained on, else "
                         "<out>/data/train-v3.npz; built if missing)")
    ap.add_argument("--eval-data", default=None, help="held-out set (<out>/data/eval-bikes-v3.npz; v2's holds the same frames)")
    ap.add_argument("--tiny", action="store_true", help="the tiny test config (32x32 frames)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--weight-decay", dest="weight_decay", type=float, default=None)
    ap.add_argument("--clip", type=float, default=None)
    ap.add_argument("--full-keep", dest="full_keep", type=float, default=None,
                    help="share of blocks trained with every token kept (default 0: n ~ U[min, max])")
    ap.add_argument("--context-keep", dest="context_keep", type=float, default=None,
                    help="share of sequences whose first block keeps every token and whose later "
                         "blocks keep falling counts (trains the use of context; default 0)")
    ap.add_argument("--beta2", type=float, default=None)
    ap.add_argument("--cooldown-steps", type=int, default=0,
                    help="decay lr linearly to 0 over N steps from now, then stop")
    ap.add_argument("--init-from", default=None, help="start a new run from another run's ckpt")
    ap.add_argument("--init-weights", default=None, metavar="P0,P1,..",
                    help="start a new run from --save-weights parts (fresh optimiser)")
    ap.add_argument("--save-weights", default=None, metavar="PREFIX",
                    help="write fp32 weights + counters as PREFIX.partN.pt (<= 15 MiB each), exit")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this long (0: never)")
    ap.add_argument("--steps", type=int, default=0, help="stop at this total step (0: never)")
    ap.add_argument("--cooldown-minutes", dest="cooldown_minutes", type=float, default=0,
                    help="with --minutes: spend the last M minutes cooling the LR to zero "
                         "(step count estimated from this run's measured step rate)")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--eval-minutes", type=float, default=30.0)
    ap.add_argument("--eval-chunks", type=int, default=16,
                    help="chunks of K frames the CPU --eval-only adaptive search uses (0: all)")
    ap.add_argument("--eval-fixed-chunks", type=int, default=0,
                    help="chunks the --eval-only fixed-budget table uses (0: all frames)")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the training forward (first step compiles, ~1 min on this "
                         "CPU; falls back to eager if compiling fails). Untried on a GPU so far.")
    ap.add_argument("--prefetch", choices=["auto", "on", "off"], default="auto",
                    help="draw batches on a background thread (auto: on a GPU, where the sampler "
                         "would otherwise stall it; the batch sequence is the same either way)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-only", action="store_true", help="evaluate (all frames) and exit")
    ap.add_argument("--export", default=None, metavar="PATH", help="write fp16 safetensors, exit")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = tiny_config() if args.tiny else ElasticTokConfig.etok_default()
    data_dir = os.path.join(args.out, "data")
    run_dir = os.path.join(args.out, "runs", args.run)
    ckpt_path = os.path.join(run_dir, "ckpt.pt")
    saved = load_checkpoint(ckpt_path) if os.path.exists(ckpt_path) else None  # loaded once
    args.data = args.data or os.path.join(data_dir, run_data_name(saved))
    args.eval_data = args.eval_data or os.path.join(data_dir, "eval-bikes-v3.npz")
    os.makedirs(run_dir, exist_ok=True)
    log_path = os.path.join(run_dir, "train.log")

    def log(msg: str):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    if args.export or args.eval_only or args.save_weights:
        if saved is None and (args.export or args.save_weights) \
                and not (args.init_from or args.init_weights):
            print(f"etok-tools train: run {args.run!r} has no checkpoint in {run_dir}: nothing to export",
                  file=sys.stderr)
            return 2
        tr, run_dir, ckpt = build_trainer(args, cfg, None, log, saved)
        if args.save_weights:
            log(f"saved weights {tr.save_weights(args.save_weights)}")
        if args.export:
            from .reference.safetensors_io import export
            name = f"etok-{args.run} step {tr.step_count} ({tr.samples} samples)"
            export(tr.model.float().cpu(), cfg, args.export, dtype="float16", name=name)
            log(f"exported {args.export} ({name})")
        if args.eval_only:
            full = tr.device.type == "cuda"
            res = run_eval(tr, load_eval_frames(args.eval_data, cfg), args.eval_fixed_chunks,
                           0 if full else args.eval_chunks, log)
            with open(os.path.join(run_dir, "eval.jsonl"), "a") as f:
                f.write(json.dumps(res) + "\n")
        return 0

    sampler = load_train_sampler(args.data, cfg, args.seed, log)
    tr, run_dir, ckpt = build_trainer(args, cfg, sampler, log, saved)
    del saved  # the trainer holds its own copy of the state
    tr.data_name = os.path.basename(args.data)
    if args.prefetch == "on" or (args.prefetch == "auto" and tr.device.type == "cuda"):
        tr.sampler = PrefetchSampler(tr.sampler)  # after load_state: it set the sampler's state
    eval_frames = load_eval_frames(args.eval_data, cfg) if os.path.exists(args.eval_data) else None
    nparam = sum(p.numel() for p in tr.model.parameters())
    log(f"run {args.run}: {nparam} parameters, device {tr.device}, threads {args.threads}, "
        f"hp {json.dumps(tr.hp)}, amp {'bf16' if tr.amp else 'off'}")

    stop = {"flag": False}

    def on_signal(signum, _frame):
        stop["flag"] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    start = time.time()
    start_step = tr.step_count
    last_ckpt = last_eval = time.time()
    win_loss, win_n, win_t0, win_samples = 0.0, 0, time.time(), tr.samples
    eval_flag = os.path.join(run_dir, "EVAL_NOW")
    while not stop["flag"]:
        if args.steps and tr.step_count >= args.steps:
            break
        if args.minutes and time.time() - start >= args.minutes * 60:
            break
        if tr.cooldown_done():
            log("cool-down finished")
            break
        if (args.minutes and args.cooldown_minutes and tr.cooldown is None
                and time.time() - start >= (args.minutes - args.cooldown_minutes) * 60):
            rate = (tr.step_count - start_step) / max(1e-9, time.time() - start)
            n = max(1, int(rate * args.cooldown_minutes * 60))
            tr.cooldown = (tr.step_count, n)
            log(f"cool-down: lr -> 0 over steps {tr.step_count}..{tr.step_count + n} "
                f"({rate:.2f} steps/s measured)")
        t_step = time.time()
        out = tr.step()
        tr.train_seconds += time.time() - t_step
        if tr.compile_error:
            log(f"torch.compile failed, training eagerly: {tr.compile_error}")
            tr.compile_error = None
        if not math.isfinite(out["loss"]):
            log(f"non-finite loss at step {tr.step_count}: stopping without saving")
            return 1
        win_loss += out["loss"]
        win_n += 1
        if tr.step_count % args.log_every == 0:
            dt = time.time() - win_t0
            log(f"step {tr.step_count} samples {tr.samples} loss {win_loss / win_n:.5f} "
                f"(psnr~{ev.mse_to_psnr(win_loss / win_n):.2f}) lr {out['lr']:.2e} "
                f"gnorm {out['gnorm']:.3f} samples/s {(tr.samples - win_samples) / dt:.2f} "
                f"train_h {tr.train_seconds / 3600:.3f}")
            win_loss, win_n, win_t0, win_samples = 0.0, 0, time.time(), tr.samples
        if time.time() - last_ckpt >= args.ckpt_minutes * 60:
            tr.save(ckpt)
            last_ckpt = time.time()
            log(f"checkpoint step {tr.step_count} -> {ckpt}")
        want_eval = time.time() - last_eval >= args.eval_minutes * 60 or os.path.exists(eval_flag)
        if want_eval and eval_frames is not None:
            if os.path.exists(eval_flag):
                os.remove(eval_flag)
            gpu = tr.device.type == "cuda"
            res = run_eval(tr, eval_frames, 0 if gpu else 16, 0 if gpu else 4, log)
            with open(os.path.join(run_dir, "eval.jsonl"), "a") as f:
                f.write(json.dumps(res) + "\n")
            last_eval = time.time()
            win_t0, win_samples = time.time(), tr.samples
    tr.save(ckpt)
    log(f"checkpoint step {tr.step_count} -> {ckpt}; stopped")
    return 0
