"""AttnGAN (Xu et al., CVPR 2018) generator and discriminators as Keras subclassed models.

Generator (:class:`AttnGanGenerator`; the reference ``G_NET`` with ``CA_NET``, ``INIT_STAGE_G``,
``NEXT_STAGE_G`` and ``GET_IMAGE_G``):

- Conditioning augmentation: ``Dense(4 c_dim)`` + GLU on the sentence vector gives ``[mu, logvar]``
  (``c_dim`` each); ``c = mu + exp(logvar / 2) * ca_noise``, or ``c = mu`` when ``ca_noise`` is None
  (deterministic sampling / evaluation). The caller draws ``ca_noise ~ N(0, I)``, so the model is a
  pure function of its inputs (same result under ``tf.function`` and on every replica).
- Initial stage: ``concat(c, z)`` -> ``Dense(2 * 16 C0, no bias)`` + BN + GLU -> reshape to
  [4, 4, C0] -> k up-blocks (nearest x2, 3x3 conv, BN, GLU) to ``base_size = 4 * 2^k``. Channel rule:
  the map at 4 * 2^j pixels has ``ngf * min(2^(k - j), 16)`` channels, so the last map has ``ngf`` and
  the reference's 64 px case is 16 ngf -> 8 -> 4 -> 2 -> ngf.
- Each further stage (x2 resolution): word attention on the previous hidden map ``h`` (ngf channels)
  -> ``concat(h, context)`` (2 ngf) -> [SelfAttention] -> ``num_residual`` residual blocks (2 ngf) ->
  up-block to ngf. The attention maps [N, h, w, T] are returned (h, w = the stage's *input* size). As
  in the reference, later stages see the text only through the words (and, indirectly, through h).
- Images: a 3x3 conv (ngf -> 3, no bias) per stage, then tanh. With ``rgb_skip=True`` (multi-scale
  "skip" generator as MSG-GAN / StyleGAN2) the pre-tanh outputs are summed across scales:
  ``r_0 = rgb_0(h_0)``, ``r_i = rgb_i(h_i) + up(r_{i-1})``, ``image_i = tanh(r_i)``, where ``up`` is a
  x2 bilinear resize with half-pixel centres (``tf.image.resize``, align_corners=False). So a stage
  only has to add detail to the upsampled previous image.

Reference sizes (taoxugit/AttnGAN ``code/cfg/bird_attn2.yml`` and ``miscc/config.py``): GF_DIM 32 (ngf),
Z_DIM 100, CONDITION_DIM 100 (c_dim), R_NUM 2, TEXT.EMBEDDING_DIM 256 (word and sentence vectors),
BRANCH_NUM 3 with BASE_SIZE 64 (images 64, 128, 256) — the defaults here; DF_DIM 64 (ndf).

Discriminator (:class:`AttnGanDiscriminator`, the reference ``D_NET64/128/256`` with ``D_GET_LOGITS``):
one per image size. ``k = log2(image_size / 4)`` stride-2 4x4 convs (LeakyReLU 0.2, BN from the second
on) bring the image to 4x4; conv ``j`` has ``ndf * min(2^j, 32)`` channels; then 3x3 convs (+ BN +
LeakyReLU) halve the channels while they exceed 8 ndf. The 4x4 code thus has
``ndf * min(2^(k - 1), 8)`` channels, which reproduces the reference: 64 px: ndf..8 ndf; 128 px: +16 ndf,
3x3 -> 8 ndf; 256 px: +16, +32 ndf, 3x3 -> 16 -> 8 ndf. Heads (``D_GET_LOGITS``): ``cond`` = the raw
sentence tiled 4x4, concatenated, 3x3 conv to the code width + BN + LeakyReLU, 4x4 valid conv to 1;
``uncond`` = 4x4 valid conv on the code to 1. Both are raw logits (the reference ends in a sigmoid;
use a with-logits loss). Convs have no bias (a BN follows) except the two logit convs.

Modern options:

- ``spectral_norm`` (D; also offered in G): every conv / dense wrapped in
  ``keras.layers.SpectralNormalization``. In D, BatchNorm is then dropped and the convs get biases
  (SN-GAN / SAGAN discriminator practice: the Lipschitz control comes from SN, and BN's batch
  coupling fights it). In G, BN is kept (SAGAN / BigGAN generators use both). Kernels are normalised
  in ``training=True`` calls only (see :mod:`t2i_tf.layers.gan_blocks`).
- ``self_attention``: SAGAN blocks (:class:`t2i_tf.layers.attention.SelfAttention`). In G: after the
  initial stage (at base_size, before its image) and after the concat in each further stage whose
  input is at most ``self_attention_max_size`` pixels (default 64: a 128x128 input would need a
  16384 x 4096 attention matrix per image). In D: after the first stride-2 conv whose output is at most
  16x16 (16x16 for image_size >= 32).

All BatchNorms are synchronised across replicas (momentum 0.9, eps 1e-5); kernels N(0, 0.02) (the
reference uses orthogonal init). Sub-layers are attributes with indexed names so
``tf.train.Checkpoint`` tracks them.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from t2i_tf.layers.attention import SelfAttention, WordAttention
from t2i_tf.layers.gan_blocks import GLU, ResidualBlock, UpBlock, batch_norm, conv_init, maybe_spectral_norm


def _doublings(size: int, what: str) -> int:
    """k such that ``size == 4 * 2^k`` with k >= 1, else a ValueError naming ``what``."""
    k = math.log2(size / 4) if isinstance(size, int) and size >= 8 else -1
    if k < 1 or k != int(k):
        raise ValueError(f"{what} must be 4 * 2^k with k >= 1 (8, 16, 32, 64, 128, 256); got {size!r}")
    return int(k)


def _check_last_dim(x, expected: int, what: str) -> None:
    if x.shape[-1] is not None and x.shape[-1] != expected:
        raise ValueError(f"{what} must have last dimension {expected}; got shape {x.shape}")


class _ConditioningAugmentation(layers.Layer):
    """Sentence [N, D] (+ noise [N, c_dim] or None) -> (c, mu, logvar), each [N, c_dim] (AttnGAN CA_NET)."""

    def __init__(self, c_dim: int, spectral_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.c_dim = int(c_dim)
        self.fc = maybe_spectral_norm(layers.Dense(4 * self.c_dim, kernel_initializer=conv_init(), name="fc"),
                                      spectral_norm)
        self.glu = GLU(name="glu")

    def build(self, sentence_shape, noise_shape=None):
        self.fc.build(sentence_shape)
        self.glu.build((sentence_shape[0], 4 * self.c_dim))

    def call(self, sentence, noise=None, training=None):
        x = self.glu(self.fc(sentence, training=training))
        mu, logvar = x[:, : self.c_dim], x[:, self.c_dim :]
        if noise is None:
            return mu, mu, logvar
        return mu + tf.exp(0.5 * logvar) * tf.cast(noise, mu.dtype), mu, logvar


class _InitStage(layers.Layer):
    """(c, z) -> hidden map [N, 4 * 2^k, 4 * 2^k, ngf] (AttnGAN INIT_STAGE_G, generalised)."""

    def __init__(self, ngf: int, doublings: int, spectral_norm: bool = False, sync_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.channels = [ngf * min(2 ** (doublings - j), 16) for j in range(doublings + 1)]
        self.num_ups = doublings
        self.fc = maybe_spectral_norm(
            layers.Dense(2 * 16 * self.channels[0], use_bias=False, kernel_initializer=conv_init(), name="fc"),
            spectral_norm)
        self.fc_bn = batch_norm("fc_bn", sync_bn)
        self.glu = GLU(name="glu")
        for j in range(doublings):
            setattr(self, f"up{j}", UpBlock(self.channels[j + 1], spectral_norm, sync_bn, name=f"up{j}"))

    def build(self, c_shape, z_shape):
        n, features = c_shape[0], 2 * 16 * self.channels[0]
        self.fc.build((n, c_shape[-1] + z_shape[-1]))
        self.fc_bn.build((n, features))
        self.glu.build((n, features))
        for j in range(self.num_ups):
            size = 4 * 2**j
            getattr(self, f"up{j}").build((n, size, size, self.channels[j]))

    def call(self, c, z, training=None):
        x = self.fc(tf.concat([c, tf.cast(z, c.dtype)], axis=-1), training=training)
        x = self.glu(self.fc_bn(x, training=training))
        x = tf.reshape(x, [-1, 4, 4, self.channels[0]])
        for j in range(self.num_ups):
            x = getattr(self, f"up{j}")(x, training=training)
        return x


class _NextStage(layers.Layer):
    """(h [N, S, S, ngf], words, mask) -> (h' [N, 2S, 2S, ngf], attention [N, S, S, T]) (NEXT_STAGE_G)."""

    def __init__(self, ngf: int, num_residual: int, self_attention: bool, spectral_norm: bool = False,
                 sync_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.num_residual = int(num_residual)
        self.word_attention = WordAttention(ngf, name="word_attention")
        self.self_attention = SelfAttention(spectral_norm, name="self_attention") if self_attention else None
        for r in range(self.num_residual):
            setattr(self, f"res{r}", ResidualBlock(2 * ngf, spectral_norm, sync_bn, name=f"res{r}"))
        self.up = UpBlock(ngf, spectral_norm, sync_bn, name="up")

    def build(self, h_shape, words_shape, word_mask_shape=None):
        self.word_attention.build(h_shape, words_shape)
        joint = (*h_shape[:-1], 2 * h_shape[-1])
        if self.self_attention is not None:
            self.self_attention.build(joint)
        for r in range(self.num_residual):
            getattr(self, f"res{r}").build(joint)
        self.up.build(joint)

    def call(self, h, words, word_mask=None, training=None):
        context, attention = self.word_attention(h, words, word_mask, training=training)
        x = tf.concat([h, context], axis=-1)
        if self.self_attention is not None:
            x = self.self_attention(x, training=training)
        for r in range(self.num_residual):
            x = getattr(self, f"res{r}")(x, training=training)
        return self.up(x, training=training), attention


class AttnGanGenerator(keras.Model):
    """Multi-stage attentional generator; see the module docstring for the architecture.

    ``inputs = (z [N, z_dim], sentence [N, sentence_dim], words [N, T, word_dim], word_mask [N, T] bool
    (True = real word) or None, ca_noise [N, c_dim] or None)``; the last element may be left out
    (= None). Returns ``{"images": [num_stages x [N, base * 2^i, base * 2^i, 3] in [-1, 1]],
    "attention": [num_stages - 1 x [N, base * 2^(i-1), ..., T]], "mu": [N, c_dim], "logvar": [N, c_dim]}``.
    """

    def __init__(self, num_stages: int = 3, base_size: int = 64, ngf: int = 32, z_dim: int = 100, c_dim: int = 100,
                 word_dim: int = 256, sentence_dim: int = 256, num_residual: int = 2, self_attention: bool = False,
                 rgb_skip: bool = False, spectral_norm: bool = False, self_attention_max_size: int = 64,
                 sync_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        doublings = _doublings(base_size, "base_size")
        for name, value, low in (("num_stages", num_stages, 1), ("ngf", ngf, 1), ("z_dim", z_dim, 1),
                                 ("c_dim", c_dim, 1), ("word_dim", word_dim, 1), ("sentence_dim", sentence_dim, 1),
                                 ("num_residual", num_residual, 0)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        self.num_stages, self.base_size, self.ngf = num_stages, base_size, ngf
        self.z_dim, self.c_dim, self.word_dim, self.sentence_dim = z_dim, c_dim, word_dim, sentence_dim
        self.rgb_skip = bool(rgb_skip)
        self.image_sizes = [base_size * 2**i for i in range(num_stages)]

        self.ca = _ConditioningAugmentation(c_dim, spectral_norm, name="ca")
        self.init_stage = _InitStage(ngf, doublings, spectral_norm, sync_bn, name="init_stage")
        self.init_self_attention = SelfAttention(spectral_norm, name="init_self_attention") if self_attention else None
        for i in range(1, num_stages):
            sa = self_attention and self.image_sizes[i - 1] <= self_attention_max_size
            setattr(self, f"stage{i}", _NextStage(ngf, num_residual, sa, spectral_norm, sync_bn, name=f"stage{i}"))
        for i in range(num_stages):
            setattr(self, f"to_rgb{i}", maybe_spectral_norm(
                layers.Conv2D(3, 3, padding="same", use_bias=False, kernel_initializer=conv_init(), name=f"to_rgb{i}"),
                spectral_norm))

    def build(self, input_shape):
        """Creates every variable from ``(z, sentence, words, ...)`` shapes, e.g. to build under a strategy scope."""
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (4, 5):
            raise ValueError("AttnGanGenerator.build takes the shapes of (z, sentence, words, word_mask[, ca_noise])")
        z_shape, sentence_shape, words_shape = input_shape[:3]
        n = sentence_shape[0]
        self.ca.build(tuple(sentence_shape))
        self.init_stage.build((n, self.c_dim), tuple(z_shape))
        if self.init_self_attention is not None:
            self.init_self_attention.build((n, self.base_size, self.base_size, self.ngf))
        for i, size in enumerate(self.image_sizes):
            if i > 0:
                prev = self.image_sizes[i - 1]
                getattr(self, f"stage{i}").build((n, prev, prev, self.ngf), tuple(words_shape))
            getattr(self, f"to_rgb{i}").build((n, size, size, self.ngf))

    def _unpack(self, inputs):
        if not isinstance(inputs, (tuple, list)) or len(inputs) not in (4, 5):
            raise ValueError("AttnGanGenerator takes (z, sentence, words, word_mask, ca_noise); "
                             "word_mask and ca_noise may be None")
        z, sentence, words, word_mask = inputs[:4]
        ca_noise = inputs[4] if len(inputs) == 5 else None
        _check_last_dim(z, self.z_dim, "z")
        _check_last_dim(sentence, self.sentence_dim, "sentence")
        if words.shape.rank != 3:
            raise ValueError(f"words must be [N, T, {self.word_dim}]; got shape {words.shape}")
        _check_last_dim(words, self.word_dim, "words")
        if ca_noise is not None:
            _check_last_dim(ca_noise, self.c_dim, "ca_noise")
        return z, sentence, words, word_mask, ca_noise

    def call(self, inputs, training=None):
        z, sentence, words, word_mask, ca_noise = self._unpack(inputs)
        c, mu, logvar = self.ca(sentence, ca_noise, training=training)
        h = self.init_stage(c, z, training=training)
        if self.init_self_attention is not None:
            h = self.init_self_attention(h, training=training)
        images, attention, rgb = [], [], None
        for i in range(self.num_stages):
            if i > 0:
                h, att = getattr(self, f"stage{i}")(h, words, word_mask, training=training)
                attention.append(att)
            out = getattr(self, f"to_rgb{i}")(h, training=training)
            if self.rgb_skip and rgb is not None:
                out = out + tf.image.resize(rgb, [self.image_sizes[i]] * 2, method="bilinear")
            rgb = out
            images.append(tf.tanh(out))
        return {"images": images, "attention": attention, "mu": mu, "logvar": logvar}


class AttnGanDiscriminator(keras.Model):
    """(images [N, S, S, 3], sentence [N, sentence_dim]) -> ``{"cond": [N], "uncond": [N]}`` raw logits.

    ``cond`` scores image-text match (and realism), ``uncond`` realism alone (it never sees the text).
    See the module docstring for the channel rule and the spectral-norm / self-attention options.
    """

    def __init__(self, image_size: int = 64, ndf: int = 64, sentence_dim: int = 256, spectral_norm: bool = False,
                 self_attention: bool = False, sync_bn: bool = True, **kwargs):
        super().__init__(**kwargs)
        steps = _doublings(image_size, "image_size")
        if not isinstance(ndf, int) or ndf < 1:
            raise ValueError(f"ndf must be an integer >= 1; got {ndf!r}")
        if not isinstance(sentence_dim, int) or sentence_dim < 1:
            raise ValueError(f"sentence_dim must be an integer >= 1; got {sentence_dim!r}")
        self.image_size, self.ndf, self.sentence_dim = image_size, ndf, sentence_dim
        self.spectral_norm = bool(spectral_norm)
        use_bn = not self.spectral_norm

        def conv(filters, kernel, name, strides=1, padding="same", bias=None):
            c = layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                              use_bias=self.spectral_norm if bias is None else bias,
                              kernel_initializer=conv_init(), name=name)
            return maybe_spectral_norm(c, self.spectral_norm)

        self.num_downs = steps
        self.attention_after = None
        for j in range(steps):
            setattr(self, f"down{j}", conv(ndf * min(2**j, 32), 4, f"down{j}", strides=2))
            if j > 0 and use_bn:
                setattr(self, f"down{j}_bn", batch_norm(f"down{j}_bn", sync_bn))
            if self_attention and self.attention_after is None and image_size // 2 ** (j + 1) <= 16:
                self.attention_after = j
        self.self_attention = (SelfAttention(self.spectral_norm, name="self_attention")
                               if self_attention else None)
        channels = ndf * min(2 ** (steps - 1), 32)
        self.num_squeezes = 0
        while channels > 8 * ndf:
            channels //= 2
            setattr(self, f"squeeze{self.num_squeezes}", conv(channels, 3, f"squeeze{self.num_squeezes}"))
            if use_bn:
                setattr(self, f"squeeze{self.num_squeezes}_bn", batch_norm(f"squeeze{self.num_squeezes}_bn", sync_bn))
            self.num_squeezes += 1
        self.code_channels = channels
        self.joint = conv(channels, 3, "joint")
        if use_bn:
            self.joint_bn = batch_norm("joint_bn", sync_bn)
        self.cond_logits = conv(1, 4, "cond_logits", padding="valid", bias=True)
        self.uncond_logits = conv(1, 4, "uncond_logits", padding="valid", bias=True)

    def build(self, input_shape):
        """Creates every variable from the ``(images, sentence)`` shapes."""
        n, size = input_shape[0][0], self.image_size
        shape = (n, size, size, 3)
        for j in range(self.num_downs):
            conv = getattr(self, f"down{j}")
            conv.build(shape)
            size //= 2
            shape = (n, size, size, self._filters(conv))
            if hasattr(self, f"down{j}_bn"):
                getattr(self, f"down{j}_bn").build(shape)
            if j == self.attention_after:
                self.self_attention.build(shape)
        for s in range(self.num_squeezes):
            conv = getattr(self, f"squeeze{s}")
            conv.build(shape)
            shape = (n, 4, 4, self._filters(conv))
            if hasattr(self, f"squeeze{s}_bn"):
                getattr(self, f"squeeze{s}_bn").build(shape)
        self.joint.build((n, 4, 4, self.code_channels + self.sentence_dim))
        if hasattr(self, "joint_bn"):
            self.joint_bn.build(shape)
        self.cond_logits.build(shape)
        self.uncond_logits.build(shape)

    @staticmethod
    def _filters(conv) -> int:
        return (conv.layer if isinstance(conv, layers.SpectralNormalization) else conv).filters

    def _norm_lrelu(self, x, bn_name, training):
        bn = getattr(self, bn_name, None)
        if bn is not None:
            x = bn(x, training=training)
        return tf.nn.leaky_relu(x, alpha=0.2)

    def encode(self, images, training=None):
        """Images -> the 4x4 code [N, 4, 4, code_channels] both heads read."""
        if images.shape.rank != 4 or tuple(images.shape[1:]) != (self.image_size, self.image_size, 3):
            raise ValueError(f"AttnGanDiscriminator({self.image_size}) takes images "
                             f"[N, {self.image_size}, {self.image_size}, 3]; got shape {images.shape}")
        x = images
        for j in range(self.num_downs):
            x = self._norm_lrelu(getattr(self, f"down{j}")(x, training=training), f"down{j}_bn", training)
            if j == self.attention_after:
                x = self.self_attention(x, training=training)
        for s in range(self.num_squeezes):
            x = self._norm_lrelu(getattr(self, f"squeeze{s}")(x, training=training), f"squeeze{s}_bn", training)
        return x

    def call(self, inputs, training=None):
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError("AttnGanDiscriminator takes (images, sentence)")
        images, sentence = inputs
        _check_last_dim(sentence, self.sentence_dim, "sentence")
        code = self.encode(images, training=training)
        s = tf.tile(tf.cast(sentence, code.dtype)[:, None, None, :], [1, 4, 4, 1])
        joint = self._norm_lrelu(self.joint(tf.concat([code, s], axis=-1), training=training), "joint_bn", training)
        cond = self.cond_logits(joint, training=training)
        uncond = self.uncond_logits(code, training=training)
        return {"cond": tf.reshape(cond, [-1]), "uncond": tf.reshape(uncond, [-1])}
