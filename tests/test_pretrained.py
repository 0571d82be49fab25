"""A user model registered with a checkpoint path is loaded, verified and never retrained."""
import pytest
import torch

from bench.errors import BenchError
from bench.models.classifiers import Classifier
from bench.models.pretrained import Pretrained
from bench.models.training import TrainConfig, train_classifier


def _factory():
    return Classifier("D")


def test_pretrained_model_loads_and_verifies(tmp_path):
    torch.manual_seed(0)
    net = _factory()
    path = tmp_path / "d.pt"
    torch.save(net.state_dict(), path)
    from bench.cache import sha256_file
    spec = Pretrained(factory=_factory, checkpoint=path, sha256=sha256_file(path))
    model = train_classifier("mine", "mnist", config=TrainConfig(), seed=0, device=torch.device("cpu"), factory=spec)
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(model(x), net.eval()(x)) and not model.training
    with pytest.raises(BenchError, match="needs a trainable model"):
        train_classifier("mine", "mnist", config=TrainConfig(adv_eps=0.1), seed=0, device=torch.device("cpu"),
                         factory=spec)
    with pytest.raises(BenchError, match="does not match its SHA-256"):
        Pretrained(factory=_factory, checkpoint=path, sha256="0" * 64).load(torch.device("cpu"), who="mine")


def test_checkpoint_for_another_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "a.pt"
    torch.save(Classifier("A").state_dict(), path)
    with pytest.raises(BenchError, match="does not fit the model"):
        Pretrained(factory=_factory, checkpoint=path).load(torch.device("cpu"), who="mine")
    with pytest.raises(BenchError, match="checkpoint not found"):
        Pretrained(factory=_factory, checkpoint=tmp_path / "none.pt").load(torch.device("cpu"), who="mine")
