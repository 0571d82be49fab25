"""GalleryHead: argmax = nearest gallery by cosine, gradients reach the input, templates are fixed."""
import pytest
import torch
from torch import nn

from bench.faces.gallery import GalleryHead, pair_scores


def _extractor():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16))


def test_argmax_is_nearest_gallery_by_cosine():
    f = _extractor().eval()
    gallery, probes = torch.rand(5, 3, 8, 8), torch.rand(7, 3, 8, 8)
    head = GalleryHead(f, gallery, torch.tensor([3, 1, 4, 1, 5]), scale=7.0)
    logits = head(probes)
    assert logits.shape == (7, 5)
    with torch.no_grad():
        cos = pair_scores(f(probes), f(gallery))
    assert torch.allclose(logits, 7.0 * cos, atol=1e-5)
    assert torch.equal(logits.argmax(1), cos.argmax(1))
    assert cos.abs().max() <= 1 + 1e-6


def test_gradients_reach_input_not_templates():
    f = _extractor().eval()
    head = GalleryHead(f, torch.rand(3, 3, 8, 8), [0, 1, 2])
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    nn.functional.cross_entropy(head(x), torch.tensor([0, 1])).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not head.templates.requires_grad
    assert set(dict(head.named_buffers())) >= {"templates", "gallery_ids"}


def test_templates_use_eval_mode_and_restore_training_flag():
    f = _extractor().train()
    gallery = torch.rand(4, 3, 8, 8)
    head = GalleryHead(f, gallery, [0, 1, 2, 3])
    assert f.training                                           # caller's mode restored
    with torch.no_grad():
        expected = nn.functional.normalize(f.eval()(gallery), dim=1)
    assert torch.allclose(head.templates, expected, atol=1e-6)  # batch stats were not used
    assert head.index_of([2, 9]).tolist() == [2, -1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        GalleryHead(_extractor(), torch.rand(2, 3, 8, 8), [0, 1], scale=0)
    with pytest.raises(ValueError, match="gallery_ids"):
        GalleryHead(_extractor(), torch.rand(2, 3, 8, 8), [0, 1, 2])
