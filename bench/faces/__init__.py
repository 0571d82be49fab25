"""The face track's data and measurement pieces (no torch import here; submodules import it lazily).

- ``faceset``: :class:`FaceSet`, the dataset type every face source returns; ``YAWS``, ``pose_index``.
- ``head`` / ``render`` / ``synth``: the synthetic multi-pose face set (``load_synth``, ``contact_sheet``).
- ``manifest``: real data (Multi-PIE, CFP) from a CSV manifest, and builders of those manifests.
- ``metrics``: rank-1 identification and verification (AUC, EER, TAR@FAR).
- ``gallery``: :class:`GalleryHead`, a feature extractor + gallery as a classifier, so classifier attacks apply.
- ``models``: face models (DR-GAN, CR-GAN, …), registered separately.
"""
from __future__ import annotations

BUILTIN_DATASETS: dict[str, str] = {
    "synth-faces": "bench.faces.synth:SYNTH_FACES",
    "face-manifest": "bench.faces.manifest:MANIFEST",
}
