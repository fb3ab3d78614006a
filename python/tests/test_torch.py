"""etok.torch: every clip once per epoch across DataLoader workers and ranks, frame boundaries,
flattening with separators, padding with masks, and tar shards in `etok export`'s layout."""
import io
import json
import os
import tarfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import etok  # noqa: E402
from etok.torch import EtokDataset, collate  # noqa: E402
from conftest import FSQ, export, run  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, clip):
    """Seven .etok clips (fixed budgets 2..8) in a folder with a subfolder."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "more").mkdir()
    paths = []
    for n in range(2, 9):
        path = folder / ("more" if n % 2 else ".") / f"clip{n}.etok"
        run("encode", clip, "-o", path, "--model", FSQ, "--fixed", n, "-q", "-y")
        paths.append(str(path.resolve()))
    return folder, sorted(paths)


def keys_of(loader):
    return [key for batch in loader for key in batch["keys"]]


def test_a_dataloader_with_two_workers_yields_every_clip_once(corpus):
    folder, paths = corpus
    data = EtokDataset(folder)
    assert len(data) == 7
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=2, collate_fn=collate)
    keys = keys_of(loader)
    assert sorted(os.path.realpath(k) for k in keys) == paths
    # The samples are the files' tokens.
    for sample in EtokDataset(paths):
        f = etok.open(sample["key"])
        assert np.array_equal(sample["tokens"].numpy(), f.tokens.astype(np.int64))
        assert np.array_equal(sample["lengths"].numpy(), f.lengths)
        assert np.array_equal(sample["offsets"].numpy(), f.offsets)


def test_ranks_and_workers_split_the_clips_and_shuffle_keeps_each_once(corpus):
    _, paths = corpus
    for shuffle in (False, True):
        seen = []
        orders = []
        for epoch in (0, 1):
            epoch_keys = []
            for rank in (0, 1):
                data = EtokDataset(paths, rank=rank, world_size=2, shuffle=shuffle, seed=3)
                data.set_epoch(epoch)
                loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
                epoch_keys += [s["key"] for s in loader]
            assert sorted(epoch_keys) == paths          # every clip once per epoch, over 2 ranks × 2 workers
            orders.append(epoch_keys)
            seen.append(sorted(epoch_keys))
        if shuffle:
            assert orders[0] != orders[1]


def test_flatten_puts_a_separator_after_each_frame(corpus):
    _, paths = corpus
    sample = next(iter(EtokDataset(paths[:1], flatten=True)))
    f = etok.open(paths[0])
    tokens = sample["tokens"].numpy()
    assert len(tokens) == int(f.lengths.sum()) + len(f)
    separator = f.vocabulary_size
    assert separator is not None and separator > int(f.tokens.max())
    ends = np.cumsum(f.lengths + 1) - 1
    assert np.all(tokens[ends] == separator)
    assert np.array_equal(np.delete(tokens, ends), f.tokens)
    custom = next(iter(EtokDataset(paths[:1], flatten=True, separator=-1)))["tokens"].numpy()
    assert np.all(custom[ends] == -1)


def test_collate_pads_and_masks(corpus):
    _, paths = corpus
    samples = list(EtokDataset(paths[:3]))
    batch = collate(samples, pad_value=-7)
    lengths = [len(s["tokens"]) for s in samples]
    assert batch["tokens"].shape == (3, max(lengths))
    for i, s in enumerate(samples):
        assert batch["mask"][i].sum() == lengths[i]
        assert torch.equal(batch["tokens"][i, :lengths[i]], s["tokens"])
        assert torch.all(batch["tokens"][i, lengths[i]:] == -7)
        assert torch.equal(batch["lengths"][i, :len(s["lengths"])], s["lengths"])
        assert batch["block_mask"][i].sum() == len(s["lengths"])


def pack_shards(paths, folder, per_shard=3):
    """Shards in `etok export`'s WebDataset layout (docs/scale.md), from the CLI's npy export of each clip."""
    folder.mkdir()
    shards = []
    for s in range(0, len(paths), per_shard):
        name = f"shard-{s // per_shard:06d}.tar"
        keys = []
        with tarfile.open(folder / name, "w", format=tarfile.USTAR_FORMAT) as tar:
            for n, path in enumerate(paths[s:s + per_shard], start=s):
                key = f"{n:08d}_" + os.path.basename(path).split(".")[0]
                keys.append(key)
                out = folder / "npy"
                export(path, out)
                members = [(f"{key}.{a}.npy", (out / f"{a}.npy").read_bytes()) for a in
                           ("lengths", "tokens", "pts", "blocks", "frames", "chunks")]
                members.append((f"{key}.json", json.dumps({"key": key, "source": path}).encode()))
                for member, data in members:
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        shards.append({"file": name, "keys": keys})
    (folder / "index.json").write_text(json.dumps({"format": "webdataset", "shards": shards}))
    return folder


def test_tar_shards_give_the_same_clips_as_the_etok_files(corpus, tmp_path):
    _, paths = corpus
    shards = pack_shards(paths, tmp_path / "shards")
    from_shards = list(torch.utils.data.DataLoader(EtokDataset(shards), batch_size=None, num_workers=2))
    from_files = {os.path.basename(s["key"]).split(".")[0]: s for s in EtokDataset(paths)}
    assert len(from_shards) == len(paths)
    for s in from_shards:
        expected = from_files[s["key"].split("_", 1)[1]]
        for name in ("tokens", "lengths", "offsets", "times", "blocks", "frames", "chunks"):
            assert torch.equal(s[name], expected[name]), name
    # Without index.json: the shards themselves.
    tars = sorted(str(p) for p in shards.glob("*.tar"))
    assert len(list(EtokDataset(tars))) == len(paths)
    with pytest.raises(ValueError, match="separator"):
        next(iter(EtokDataset(tars, flatten=True)))


def test_shards_written_by_etok_export(corpus, tmp_path):
    _, paths = corpus
    out = tmp_path / "dataset"
    result = run("export", *paths, "-o", f"{out}/", "--shard-size", "4K", "-q", check=False)
    if result.returncode != 0 or not (out / "index.json").exists():
        pytest.skip("this etok has no sharded export (the batch branch)")
    data = EtokDataset(out)
    assert len(data) == len(paths)
    got = list(torch.utils.data.DataLoader(data, batch_size=None, num_workers=2))
    for n, path in enumerate(paths):
        # Keys are NNNNNNNN_NAME in input order (docs/scale.md).
        match = [s for s in got if s["key"] == f"{n:08d}_" + os.path.basename(path).split(".")[0]]
        assert len(match) == 1
        assert np.array_equal(match[0]["tokens"].numpy(), etok.open(path).tokens.astype(np.int64))
