"""Objectives beyond plain supervised training. Each provides what `nnctl.train.Loop` needs:
init, train_step, eval_step, zero_sums, finalize (and predict).

* `Regularized` (regularized.py): supervised / autoencoder training plus activity regularizers
  (sparse, contractive), input corruption (denoising) and on-device augmentation.
* `VAE` (vae.py): encoder -> (mean, log-variance) -> reparameterised sample -> decoder; loss
  reconstruction + beta * KL(q(z|x) || N(0, I)).
* `GAN` (gan.py): generator and discriminator, two Optax optimizers, alternating updates in one step.
* nets.py: the Flax modules that hold two networks (VAENet, GANNet).
"""
