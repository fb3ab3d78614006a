"""etok.ray on a local Ray instance: the .etok files are the CLI's, failures are rows, and the
token files read back into a Ray Dataset."""
import os
import shutil

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import etok  # noqa: E402
import etok.ray  # noqa: E402
from conftest import FSQ, run  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    # Ray's workers import etok from this checkout (when it is not pip-installed), with this
    # process's library and OpenBLAS kernels.
    package = os.path.dirname(os.path.dirname(os.path.abspath(etok.__file__)))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))}
    env.update({k: os.environ[k] for k in ("ETOK_LIBRARY", "OPENBLAS_CORETYPE") if k in os.environ})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": env})
    yield
    ray.shutdown()


def test_ray_encode_writes_the_clis_etok_files_and_reads_them_back(local_ray, clip, tmp_path):
    videos = []
    for name in ("a.mkv", "b.mkv"):
        shutil.copy(clip, tmp_path / name)
        videos.append(str(tmp_path / name))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    out = tmp_path / "tokens"
    rows = etok.ray.encode(videos + [str(broken)], out, model=FSQ, psnr=7.5, chunk=3).take_all()
    by_path = {r["path"]: r for r in rows}
    assert len(rows) == 3
    assert "broken.mp4" in by_path[str(broken)]["error"]
    for video in videos:
        row = by_path[video]
        assert row["error"] is None and row["frames"] == 12
        cli = tmp_path / "cli.etok"
        run("encode", video, "-o", cli, "--model", FSQ, "--psnr", 7.5, "--chunk", 3, "-q", "-y")
        assert open(row["output"], "rb").read() == cli.read_bytes()
        assert row["tokens"] == int(etok.open(cli).lengths.sum())
        assert np.isfinite(row["psnr"])
    clips = etok.ray.read(out).take_all()
    assert sorted(c["key"] for c in clips) == sorted(str(out / (n + ".etok")) for n in ("a.mkv", "b.mkv"))
    for c in clips:
        assert np.array_equal(np.asarray(c["tokens"]), etok.open(c["key"]).tokens)


def test_a_worker_opens_each_model_once(tmp_path):
    """Rows of one Ray worker share the model: the same file (also under another name) gives the
    same etok.Model, another file another one; a model file that cannot load is the row's error."""
    link = tmp_path / "same.safetensors"
    os.symlink(FSQ, link)
    first = etok.ray.worker_model(FSQ)
    assert etok.ray.worker_model(str(link)) is first
    assert etok.ray.worker_model(None) is etok.codec.default_model()
    assert etok.ray.worker_model(None) is not first
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    row = etok.ray._encode_row({"path": FSQ, "output": str(tmp_path / "x.etok")}, str(tmp_path), {"model": str(bad)})
    assert row["error"] and "bad.safetensors" in row["error"]
