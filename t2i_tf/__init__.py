"""t2i_tf: TensorFlow 2 / Keras 3 text-and-image models (TIRG, GAN-CLS, StackGAN, AttnGAN)."""

__version__ = "0.1.0"
