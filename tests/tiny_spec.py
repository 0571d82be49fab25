"""A spec small enough for unit tests: model D on 600 MNIST images, 24 test images."""

TINY_SPEC = """
key = "tiny"
title = "tiny test experiment"
dataset = "mnist"
models = ["D"]
n = 24
batch_size = 12
seed = 3
defenses = ["none"]
attacks = [
  { key = "none" },
  { key = "fgsm", eps = [0.1, 0.3], backends = ["torchattacks"] },
  { key = "rand-fgsm", eps = [0.3], alpha = 0.05 },
]
train = { epochs = 1, train_images = 600 }
paper = [ { model = "D", attack = "fgsm", eps = 0.3, value = 0.04, status = "recalled", source = "test" } ]
"""


def write_tiny_spec(folder, text: str = TINY_SPEC):
    path = folder / "tiny.toml"
    path.write_text(text)
    return path
