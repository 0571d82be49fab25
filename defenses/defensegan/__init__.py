"""Defense-GAN (Samangouei et al., ICLR 2018): a WGAN-GP generator and the projection onto its range.

Kept import-light (no torch here) so ``bench list`` stays fast. Modules:

* :mod:`.nets` — generator and critic of the released code (MNIST / F-MNIST, latent 128).
* :mod:`.train` — WGAN-GP training with resumable, content-keyed checkpoints.
* :mod:`.artifacts` — save / load / verify shipped generator weights with provenance.
* :mod:`.purifier` — the batched projection (:class:`DefenseGANPurifier`); :mod:`.reference` — the
  one-image-at-a-time loop it is tested against.
* :mod:`.factory` — the registered defense factory; :mod:`.perf` and :mod:`.quality` — measurements.
"""
