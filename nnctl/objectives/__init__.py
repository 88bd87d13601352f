"""Objectives: what each model kind optimises, on the engine's step mechanics. Each implements
`nnctl.engine.loop.Objective`: init, propose (one update before the finite check), add, zero_sums,
eval_step, finalize, predict, describe.

* `Supervised` (supervised.py): a network's output against targets, kernel regularizers, metrics on device.
* `Regularized` (regularized.py): supervised / autoencoder training plus activity regularizers
  (sparse, contractive), input corruption (denoising) and on-device augmentation.
* `VAE` (vae.py): encoder -> (mean, log-variance) -> reparameterised sample -> decoder; loss
  reconstruction + beta * KL(q(z|x) || N(0, I)).
* `GAN` (gan.py): generator and discriminator, two Optax optimizers, alternating updates in one step.
* nets.py: the Flax modules that hold two networks (VAENet, GANNet); specs.py: the spec types of these
  setups (no JAX: the spec loader imports it).
"""
