"""Synthetic heads: renderer invariants, the cached data set, FaceSet, and (slow) the pixel matcher's curve."""
import numpy as np
import pytest
import torch

import bench.faces.synth as synth
from bench.errors import BenchError, DataError
from bench.faces.faceset import YAWS, FaceSet, pose_index
from bench.faces.head import Head, sample_identities
from bench.faces.render import LIGHTS, render_head

TINY = dict(n_train_ids=2, n_test_ids=3, size=16, n_illums=2, seed=1, progress=False)


def _heads(n=2, seed=0):
    return [Head(row) for row in sample_identities(n, torch.Generator().manual_seed(seed))]


def test_render_shape_range_and_determinism():
    head = _heads(1)[0]
    img = render_head(head, [-45, 0, 90], lights=LIGHTS[:2], size=16)
    assert img.shape == (3, 2, 3, 16, 16) and img.dtype == torch.float32
    assert 0 <= img.min() and img.max() <= 1
    assert torch.equal(img, render_head(head, [-45, 0, 90], lights=LIGHTS[:2], size=16))
    assert (img[:, 0] - img[:, 1]).abs().mean() > 0.01            # lights change the image
    assert (img[0] - img[1]).abs().mean() > 0.02                  # so does the pose


def test_symmetric_head_mirrors_under_opposite_yaw():
    head = _heads(1)[0]
    sym_light = [(0.0, 0.15, 1.0)]
    img = render_head(head, [-30, 0, 30], lights=sym_light, size=24)[:, 0]
    # up to a few silhouette pixels where float rounding decides hit or miss
    assert (img[1] - img[1].flip(-1)).abs().mean() < 0.003         # frontal view is left/right symmetric
    assert (img[0] - img[2].flip(-1)).abs().mean() < 0.003         # yaw −θ = mirror of +θ
    assert (img[0] - img[2]).abs().mean() > 0.03


def test_identities_differ():
    a, b = _heads(2)
    assert (render_head(a, [0], size=16) - render_head(b, [0], size=16)).abs().mean() > 0.02


def test_pose_index():
    assert [pose_index(y) for y in (-90, 0, 90)] == [0, 6, 12] and len(YAWS) == 13
    with pytest.raises(DataError, match="yaw_deg: 10"):
        pose_index(10)


def test_load_synth_caches_and_verifies(tmp_path, monkeypatch):
    test = synth.load_synth("test", root=tmp_path, **TINY)
    assert test.x.shape == (3 * 13 * 2, 3, 16, 16) and test.x.dtype == torch.float32
    assert test.subject.unique().tolist() == [0, 1, 2]
    assert sorted(test.yaw.unique().tolist()) == list(YAWS) and test.illum.unique().tolist() == [0, 1]
    assert (test.split, test.name, len(test.sha256)) == ("test", "synth-faces", 64)
    train = synth.load_synth("train", root=tmp_path, **TINY)
    front = lambda fs: fs.x[(fs.yaw == 0) & (fs.illum == 0)]       # noqa: E731
    assert (front(train)[:, None] - front(test)[None]).abs().flatten(2).mean(2).min() > 0.01   # other people

    def no_render(*args, **kwargs):
        raise AssertionError("cache miss")
    monkeypatch.setattr(synth, "render_split", no_render)
    again = synth.load_synth("test", root=tmp_path, **TINY)
    assert torch.equal(again.x, test.x) and again.sha256 == test.sha256

    path = synth.cache_path("test", synth.generator_params(**{k: v for k, v in TINY.items() if k != "progress"}),
                            tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="SHA-256"):
        synth.load_synth("test", root=tmp_path, **TINY)


def test_load_synth_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="split: unknown split 'val'"):
        synth.load_synth("val", root=tmp_path)
    with pytest.raises(BenchError, match="n_illums"):
        synth.load_synth("test", root=tmp_path, n_illums=99)
    with pytest.raises(BenchError, match="size"):
        synth.load_synth("test", root=tmp_path, size=4)


def test_faceset_select_and_contact_sheet(tmp_path):
    faces = synth.SYNTH_FACES.load("test", root=tmp_path, **TINY)
    gallery = faces.select((faces.yaw == 0) & (faces.illum == 0))
    assert len(gallery) == 3 and gallery.subject.tolist() == [0, 1, 2] and gallery.sha256 != faces.sha256
    assert len(faces.select(torch.tensor([0, 5]))) == 2
    fig = synth.contact_sheet(faces, n_ids=2)
    assert len(fig.axes) == 2 * 13
    with pytest.raises(DataError, match="subject"):
        FaceSet(x=faces.x[:2], subject=faces.subject[:3], yaw=faces.yaw[:2], illum=faces.illum[:2],
                name="n", split="s", sha256="0")


@pytest.mark.slow
def test_pixel_matcher_collapses_with_yaw():
    """The default test set (100 ids; renders in about a minute when not cached): pixel cosine, gallery frontal."""
    from bench.faces.gallery import pair_scores
    from bench.faces.metrics import rank1_by_group

    faces = synth.load_synth("test", progress=False)
    is_gallery = (faces.yaw == 0) & (faces.illum == 0)
    gallery, probes = faces.select(is_gallery), faces.select(~is_gallery)
    scores = pair_scores(probes.x, gallery.x)
    curve = {k: v["rank1"] for k, v in rank1_by_group(scores, probes.subject, gallery.subject,
                                                          probes.yaw.abs()).items()}
    assert curve[0] > 0.6 and curve[15] > curve[45] > curve[90]
    assert curve[90] < 0.3 and np.all(np.diff([curve[y] for y in (15, 30, 45, 60)]) < 0)
