"""Record of how tests/import_torch/fixtures/attngan/*.npz were made from the official taoxugit/AttnGAN code.

Not a test (needs PyTorch and torchvision; pytest does not collect it). Run once, from the repository root:

    python tests/import_torch/make_attngan_fixtures.py \
        --mirror /work/.mirror/taoxugit+AttnGAN/repo --out tests/import_torch/fixtures/attngan

What it does:

1. Copies the official ``code/model.py``, ``code/GlobalAttention.py`` and ``code/miscc/config.py`` into a scratch
   directory plus a 10-line ``easydict`` stand-in. One textual patch: ``CNN_ENCODER.forward``'s
   ``nn.Upsample(size=(299, 299), mode='bilinear')`` gets ``align_corners=True``, which is what that line did in
   the PyTorch (<= 0.3, ``Variable`` era) the code was written for; PyTorch >= 0.4 changed the default to False.
   At run time ``torch.utils.model_zoo.load_url`` returns a freshly built torchvision Inception-v3 state dict
   (nothing is downloaded; the weights are replaced below anyway) and ``CA_NET.reparametrize`` takes its ``eps``
   from the fixture instead of drawing it (the formula, ``eps * exp(logvar / 2) + mu``, is unchanged).
2. Sets small sizes in ``cfg`` (GF_DIM 4, DF_DIM 4, Z_DIM 8, CONDITION_DIM 6, TEXT.EMBEDDING_DIM 10, R_NUM 2,
   BRANCH_NUM 3, WORDS_NUM 6) and builds RNN_ENCODER(20 words, ninput 12, nhidden 10), CNN_ENCODER(10), G_NET,
   D_NET64/128/256.
3. Replaces EVERY tensor of every state dict by :func:`seeded_weights` (numpy, a seed per network), so the tests
   regenerate the same weights without torch: only the tensor names and shapes (``<net>_shapes.json``), the
   inputs and the expected outputs are committed. Big inputs (the CNN's and the discriminators' images) are
   regenerated from a seed too (:func:`seeded_images`).
4. Runs each network in eval mode (BatchNorm with running statistics, no dropout) and saves NCHW / torch-layout
   outputs. Discriminator logits are taken before the final ``nn.Sigmoid`` (a forward hook on
   ``outlogits[0]``). Large maps are saved subsampled (the keys say by how much).

The attention mask: the released GlobalAttentionGeneral repeats the mask with ``mask.repeat(queryL, 1)`` while the
scores are laid out batch-major (``attn.view(batch_size * queryL, sourceL)``), so for batch > 1 with captions of
different lengths row ``r`` gets caption ``r % batch``'s mask instead of caption ``r // queryL``'s. Ours masks
every caption with its own mask; the generator fixture therefore uses captions of EQUAL length (both with one
padding word), where the two agree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script: the repo root on the path for the tests package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.import_torch.official_scratch import git_show, scratch_copy  # noqa: E402

SEEDS = {"rnn": 11, "cnn": 12, "g": 13, "d64": 14, "d128": 15, "d256": 16}
IMAGE_SEEDS = {"cnn": 21, "d64": 22, "d128": 23, "d256": 24}
CNN_INPUT_SIZE = 64  # CNN_ENCODER resizes it to 299 (bilinear, align_corners=True)


def seeded_weights(shapes: dict[str, list[int]], seed: int) -> dict[str, np.ndarray]:
    """Deterministic weights for a state dict's names and shapes (names in sorted order, one RandomState).

    Kernels N(0, 2 / fan_in) (fan_in = product of all but the first dim), BatchNorm weight U(0.8, 1.2), biases
    N(0, 0.1), running_mean N(0, 0.1), running_var U(0.5, 1.5), num_batches_tracked 0: activations keep their
    scale through the deep networks, so a mapping error shows as a large relative error.
    """
    rng = np.random.RandomState(seed)
    out = {}
    for name in sorted(shapes):
        shape = tuple(int(s) for s in shapes[name])
        if name.endswith("num_batches_tracked"):
            out[name] = np.zeros(shape, np.int64)
            continue
        if name.endswith("running_var"):
            x = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("running_mean") or name.endswith("bias") or "bias_" in name.rsplit(".", 1)[-1]:
            x = rng.normal(0.0, 0.1, shape)
        elif len(shape) == 1:
            x = rng.uniform(0.8, 1.2, shape)
        else:
            x = rng.normal(0.0, np.sqrt(2.0 / int(np.prod(shape[1:]))), shape)
        out[name] = x.astype(np.float32)
    return out


def seeded_images(seed: int, n: int, size: int) -> np.ndarray:
    """Images [n, 3, size, size] (NCHW) uniform in [-1, 1]."""
    return np.random.RandomState(seed).uniform(-1.0, 1.0, (n, 3, size, size)).astype(np.float32)


def _scratch(mirror: str) -> str:
    model = git_show(mirror, "code/model.py")
    old = "nn.Upsample(size=(299, 299), mode='bilinear')"
    assert model.count(old) == 1
    model = model.replace(old, "nn.Upsample(size=(299, 299), mode='bilinear', align_corners=True)")
    return scratch_copy(mirror, {"model.py": model, "GlobalAttention.py": git_show(mirror, "code/GlobalAttention.py"),
                                 "miscc/config.py": git_show(mirror, "code/miscc/config.py")}, "attngan_official_")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirror", default="/work/.mirror/taoxugit+AttnGAN/repo")
    ap.add_argument("--out", default="tests/import_torch/fixtures/attngan")
    args = ap.parse_args()
    commit = subprocess.check_output(["git", "--git-dir", args.mirror, "rev-parse", "HEAD"], text=True).strip()
    sys.path.insert(0, _scratch(args.mirror))
    import torch
    import torch.utils.model_zoo as model_zoo
    import torchvision
    from miscc.config import cfg
    import model as official

    model_zoo.load_url = lambda url, *a, **k: torchvision.models.inception_v3(
        weights=None, aux_logits=True, init_weights=False).state_dict()
    cfg.CUDA = False
    cfg.TRAIN.FLAG = True
    cfg.GAN.GF_DIM, cfg.GAN.DF_DIM, cfg.GAN.Z_DIM, cfg.GAN.CONDITION_DIM, cfg.GAN.R_NUM = 4, 4, 8, 6, 2
    cfg.TEXT.EMBEDDING_DIM, cfg.TREE.BRANCH_NUM, cfg.TEXT.WORDS_NUM = 10, 3, 6
    eps_queue: list = []

    def reparametrize(self, mu, logvar):  # the official formula with eps from the fixture
        return eps_queue.pop(0).mul(logvar.mul(0.5).exp()).add(mu)

    official.CA_NET.reparametrize = reparametrize
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)

    def load_seeded(net, key):
        shapes = {k: list(v.shape) for k, v in net.state_dict().items()}
        weights = seeded_weights(shapes, SEEDS[key])
        net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        net.eval()
        with open(os.path.join(args.out, f"{key}_shapes.json"), "w") as f:
            json.dump(shapes, f, indent=0, sort_keys=True)

    def save(key, **arrays):
        arrays = {k: (v.detach().numpy() if hasattr(v, "detach") else np.asarray(v)) for k, v in arrays.items()}
        np.savez_compressed(os.path.join(args.out, f"{key}.npz"), official_commit=np.array(commit), **arrays)

    rng = np.random.RandomState(0)
    with torch.no_grad():
        # ---------------- RNN_ENCODER: three captions of lengths 6, 4, 2 (sorted, as prepare_data does)
        rnn = official.RNN_ENCODER(20, ninput=12, drop_prob=0.5, nhidden=10)
        load_seeded(rnn, "rnn")
        lens = np.array([6, 4, 2])
        captions = np.zeros((3, 6), np.int64)
        for i, n in enumerate(lens):
            captions[i, :n] = rng.randint(1, 20, n)
        words, sent = rnn(torch.from_numpy(captions), torch.from_numpy(lens), rnn.init_hidden(3))
        save("rnn", captions=captions, cap_lens=lens, words_emb=words, sent_emb=sent)

        # ---------------- CNN_ENCODER
        cnn = official.CNN_ENCODER(10)
        load_seeded(cnn, "cnn")
        images = seeded_images(IMAGE_SEEDS["cnn"], 2, CNN_INPUT_SIZE)
        features, code = cnn(torch.from_numpy(images))
        save("cnn", features=features, cnn_code=code, input_size=CNN_INPUT_SIZE)

        # ---------------- G_NET (3 stages) with equal-length captions (see the module docstring)
        g = official.G_NET()
        load_seeded(g, "g")
        z = rng.normal(size=(2, 8)).astype(np.float32)
        sent = rng.normal(size=(2, 10)).astype(np.float32)
        words = rng.normal(size=(2, 10, 5)).astype(np.float32)
        mask = np.zeros((2, 5), bool)
        mask[:, 4] = True  # torch convention: True = padding
        eps = rng.normal(size=(2, 6)).astype(np.float32)
        eps_queue.append(torch.from_numpy(eps))
        imgs, atts, mu, logvar = g(torch.from_numpy(z), torch.from_numpy(sent), torch.from_numpy(words),
                                   torch.from_numpy(mask))
        assert not eps_queue
        save("g", z=z, sent_emb=sent, words_emb=words, mask=mask, eps=eps, mu=mu, logvar=logvar,
             image64_s2=imgs[0][:, :, ::2, ::2], image128_s2=imgs[1][:, :, ::2, ::2],
             image256_s4=imgs[2][:, :, ::4, ::4], att64_s2=atts[0][:, :, ::2, ::2],
             att128_s4=atts[1][:, :, ::4, ::4], image256_corner=imgs[2][:, :, :16, :16])

        # ---------------- D_NET64 / 128 / 256: cond and uncond logits (before the sigmoid)
        sent_d = rng.normal(size=(2, 10)).astype(np.float32)
        for key, cls, size in (("d64", official.D_NET64, 64), ("d128", official.D_NET128, 128),
                               ("d256", official.D_NET256, 256)):
            d = cls()
            load_seeded(d, key)
            logits = {}
            d.COND_DNET.outlogits[0].register_forward_hook(lambda m, i, o: logits.__setitem__("cond", o))
            d.UNCOND_DNET.outlogits[0].register_forward_hook(lambda m, i, o: logits.__setitem__("uncond", o))
            x = torch.from_numpy(seeded_images(IMAGE_SEEDS[key], 2, size))
            code = d(x)
            p_cond = d.COND_DNET(code, torch.from_numpy(sent_d))
            p_uncond = d.UNCOND_DNET(code)
            save(key, sent_emb=sent_d, code=code, cond_logits=logits["cond"].reshape(-1),
                 uncond_logits=logits["uncond"].reshape(-1), cond_probs=p_cond, uncond_probs=p_uncond)
    print("wrote", sorted(os.listdir(args.out)))


if __name__ == "__main__":
    main()
