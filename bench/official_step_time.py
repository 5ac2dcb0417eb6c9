"""Benchmark: one training step of the official PyTorch code vs ours, at the paper settings, in one run.

Needs PyTorch + torchvision (only this script; the tests never do). Rows:

- TIRG: google/tirg's ``TIRG`` (ResNet-18, embed 512), soft triplet, SGD, batch 32 on 64x64 CSS images,
  vs ``--model=tirg --preset=paper`` (the Trainer's own tf.function loop).
- StackGAN Stage-I: StackGAN-Pytorch's ``STAGE1_G`` / ``STAGE1_D`` at 64 px, CUB settings (batch 64, gf 128 x 8,
  df 64, condition 128), one D and one G update as ``GANTrainer.train``, vs ``--model=stackgan --preset=paper``.
- AttnGAN 64+128: AttnGAN's ``G_NET`` with ``TREE.BRANCH_NUM = 2``, ``D_NET64`` / ``D_NET128``, frozen
  ``RNN_ENCODER`` and ``CNN_ENCODER`` (Inception v3), CUB settings (batch 20, gf 32, df 64), one step of
  ``condGANTrainer.train`` (the D updates, the G update with DAMSM word/sentence losses and KL, the 0.999 EMA),
  vs ``--model=attngan --preset=paper`` with ``num_stages=2`` (its frozen DAMSM: a one-step paper-preset run).

The official code is read from ``--official_root``: a directory holding the fetched bare mirrors
(``google+tirg/repo``, ``hanzhanggit+StackGAN-Pytorch/repo``, ``taoxugit+AttnGAN/repo``, as under /work/.mirror)
or plain checkouts / copies (``tirg/``, ``StackGAN-Pytorch/``, ``AttnGAN/``). Its files are copied to a
temporary directory and patched only for Python 3 / CPU / current PyTorch (``.cuda()`` removed,
``pretrained=True`` -> random weights, the legacy autograd Function of the TIRG triplet loss made new-style);
nothing of it is written into this repository. Both sides run on the same threads (``--threads``, default 1).

    python bench/official_step_time.py --official_root=/work/.mirror [--steps=10] [--models=tirg,stackgan,attngan]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import common  # sets TF env vars and sys.path (before TensorFlow is imported)

REPOS = {  # model -> (mirror dir name, checkout dir name)
    "tirg": ("google+tirg", "tirg"),
    "stackgan": ("hanzhanggit+StackGAN-Pytorch", "StackGAN-Pytorch"),
    "attngan": ("taoxugit+AttnGAN", "AttnGAN"),
}

EASYDICT = '''
class EasyDict(dict):
    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k)
    def __setattr__(self, k, v):
        self[k] = v
'''


class Missing(SystemExit):
    """A one-line error for a missing requirement."""


def read_official(root: str, model: str, path: str) -> str:
    """The text of ``path`` in the official repository of ``model`` under ``root`` (bare mirror or checkout)."""
    mirror_name, checkout_name = REPOS[model]
    for git_dir in (os.path.join(root, mirror_name, "repo"), os.path.join(root, mirror_name)):
        if os.path.isfile(os.path.join(git_dir, "HEAD")):
            return subprocess.check_output(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"], text=True)
    for base in (os.path.join(root, checkout_name), os.path.join(root, mirror_name), root):
        if os.path.isfile(os.path.join(base, path)):
            with open(os.path.join(base, path)) as f:
                return f.read()
    raise Missing(f"error: {path} of {model} not found under --official_root={root} (expected {mirror_name}/repo "
                  f"(a bare mirror) or {checkout_name}/{path})")


def _replace(text: str, old: str, new: str, what: str) -> str:
    if old not in text:
        raise Missing(f"error: cannot patch {what}: {old.strip()[:60]!r} not found (another version of the official code?)")
    return text.replace(old, new)


def write_scratch(files: dict[str, str], prefix: str) -> str:
    """A new temporary directory holding ``files`` (relative path -> text) plus an ``easydict`` stand-in."""
    d = tempfile.mkdtemp(prefix=prefix)
    for rel, text in dict(files, **{"easydict.py": EASYDICT}).items():
        path = os.path.join(d, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.dirname(path) != d and not os.path.exists(os.path.join(os.path.dirname(path), "__init__.py")):
            open(os.path.join(os.path.dirname(path), "__init__.py"), "w").close()
        with open(path, "w") as f:
            f.write(text)
    return d


def tirg_scratch(root: str) -> str:
    """google/tirg's model, loss, data and evaluation files in a scratch dir, patched for Python 3 / CPU / torch 2:
    ``.cuda()`` removed; ``resnet18(pretrained=True)`` -> ``weights=None``; ``range + range`` -> lists; the legacy
    (non-static) autograd Function ``MyTripletLossFunc`` -> the same forward / backward as a static-method Function;
    ``np.load(...)`` with ``allow_pickle=True``; unused ``skimage`` / ``tensorboardX`` imports dropped; main.py's
    loop stops after ``--num_iters`` iterations exactly and skips its in-loop evaluation."""
    get = lambda p: read_official(root, "tirg", p).replace(".cuda()", "")
    models = get("img_text_composition_models.py")
    models = _replace(models, "resnet18(pretrained=True)", "resnet18(weights=None)", "resnet18")
    models = _replace(models, "labels = range(mod_img1.shape[0]) + range(img2.shape[0])",
                      "labels = list(range(mod_img1.shape[0])) + list(range(img2.shape[0]))", "labels")
    tf_ = get("torch_functions.py")
    tf_ = _replace(tf_, "  def __init__(self, triplets):\n    super(MyTripletLossFunc, self).__init__()\n"
                        "    self.triplets = triplets\n    self.triplet_count = len(triplets)\n\n"
                        "  def forward(self, features):\n",
                   "  @staticmethod\n  def forward(self, features, triplets):\n"
                   "    self.triplets = triplets\n    self.triplet_count = len(triplets)\n", "MyTripletLossFunc")
    tf_ = _replace(tf_, "  def backward(self, grad_output):", "  @staticmethod\n  def backward(self, grad_output):",
                   "backward")
    tf_ = _replace(tf_, "    return grad_features\n", "    return grad_features, None\n", "backward return")
    tf_ = _replace(tf_, "MyTripletLossFunc(triplets)(x)", "MyTripletLossFunc.apply(x, triplets)", "apply")
    data = get("datasets.py")
    data = _replace(data, "import skimage.io\n", "", "skimage")
    data = _replace(data, "/css_toy_dataset_novel2_small.dup.npy').item()",
                    "/css_toy_dataset_novel2_small.dup.npy', allow_pickle=True).item()", "np.load")
    main = get("main.py")
    main = _replace(main, "from tensorboardX import SummaryWriter\n", "", "tensorboardX")
    main = _replace(main, "torch.set_num_threads(3)\n", "", "threads")
    main = _replace(main, "    if epoch % 3 == 1:\n", "    if False:\n", "in-loop test")
    main = _replace(main, "      training_1_iter(data)\n",
                    "      training_1_iter(data)\n      if it >= opt.num_iters:\n        break\n", "num_iters")
    return write_scratch({"img_text_composition_models.py": models, "torch_functions.py": tf_,
                          "text_model.py": get("text_model.py"), "datasets.py": data, "main.py": main,
                          "test_retrieval.py": get("test_retrieval.py")}, "tirg_official_")


def stackgan_scratch(root: str) -> str:
    """StackGAN-Pytorch's ``model.py``, ``miscc/config.py`` and ``miscc/utils.py`` (losses, ``weights_init``):
    ``errD_*.data[0]`` (a 0-dim tensor) -> ``.item()``; ``cfg.CUDA`` is set False at run time."""
    get = lambda p: read_official(root, "stackgan", p)
    utils = get("code/miscc/utils.py")
    utils = _replace(utils, "return errD, errD_real.data[0], errD_wrong.data[0], errD_fake.data[0]",
                     "return errD, errD_real.item(), errD_wrong.item(), errD_fake.item()", "utils .data[0]")
    return write_scratch({"model.py": get("code/model.py"), "miscc/config.py": get("code/miscc/config.py"),
                          "miscc/utils.py": utils}, "stackgan_official_")


def attngan_scratch(root: str) -> str:
    """AttnGAN's ``model.py``, ``GlobalAttention.py``, ``miscc/config.py`` and ``miscc/losses.py``:
    ``.data[0]`` -> ``.item()`` in the loss logs; the uint8 masks of the DAMSM losses -> bool (current
    ``masked_fill_``); ``model_zoo.load_url`` of Inception v3 is replaced at run time by a fresh torchvision
    state dict (nothing downloaded)."""
    get = lambda p: read_official(root, "attngan", p)
    losses = get("code/miscc/losses.py").replace(".data[0]", ".item()")
    losses = _replace(losses, "masks = torch.ByteTensor(masks)", "masks = torch.from_numpy(masks).bool()", "masks")
    return write_scratch({"model.py": get("code/model.py"), "GlobalAttention.py": get("code/GlobalAttention.py"),
                          "miscc/config.py": get("code/miscc/config.py"), "miscc/losses.py": losses},
                         "attngan_official_")


def _fresh_import(scratch: str, names: list[str]):
    """Import ``names`` from ``scratch`` (the three repos share module names: model, miscc)."""
    import importlib

    for mod in list(sys.modules):
        if mod in ("model", "miscc", "GlobalAttention", "datasets", "main", "easydict") or mod.startswith("miscc."):
            del sys.modules[mod]
    sys.path.insert(0, scratch)
    try:
        return [importlib.import_module(n) for n in names]
    finally:
        sys.path.remove(scratch)


def time_torch(step, steps: int, warmup: int = 1) -> float:
    """ms per call of ``step()`` after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return 1000 * (time.perf_counter() - t) / steps


def time_ours(task, steps: int, warmup: int = 1) -> float:
    """ms per train step of the Trainer's own tf.function loop (as bench/common.py, one step per call, so that
    slow models need few steps), after ``warmup`` steps that also trace it; the input pipeline runs alongside."""
    from t2i_tf.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as workdir:
        trainer = Trainer(task, workdir, num_iters=steps + warmup, strategy="auto", verbose=False)
        trainer.setup()
        import tensorflow as tf

        iterator = iter(trainer.strategy.distribute_datasets_from_function(lambda ctx: task.train_dataset(ctx, 0)))
        loop, one = trainer._make_loop(), tf.constant(1, tf.int32)
        sync = lambda metrics: next(iter(metrics.values())).numpy()
        for _ in range(warmup):
            sync(loop(iterator, one))
        t = time.perf_counter()
        for _ in range(steps):
            sync(loop(iterator, one))
        return 1000 * (time.perf_counter() - t) / steps


CSS_TEXTS = ["add red cube to middle-left", "make top-left large circle green", "remove bottom-center small sphere",
             "make middle-center yellow rectangle blue", "add small cyan triangle to top-right",
             "remove top-right large gray circle", "make bottom-left object small", "add large purple cube to center"]


# ------------------------------------------------------------------------------------------------------- TIRG
def official_tirg(root: str, steps: int) -> float:
    """google/tirg: one ``training_1_iter`` (main.py:217-258) of TIRG + soft triplet + SGD, batch 32, 64 px."""
    import numpy as np
    import torch

    main, = _fresh_import(tirg_scratch(root), ["main"])
    opt = argparse.Namespace(dataset="css3d", model="tirg", embed_dim=512, learning_rate=1e-2, weight_decay=1e-6)
    model, optimizer = main.create_model_and_optimizer(opt, CSS_TEXTS)
    model.train()
    rng = np.random.default_rng(0)
    img1 = torch.from_numpy(rng.standard_normal((32, 3, 64, 64), np.float32))
    img2 = torch.from_numpy(rng.standard_normal((32, 3, 64, 64), np.float32))
    mods = [CSS_TEXTS[i % len(CSS_TEXTS)] for i in range(32)]

    def step():
        loss = model.compute_loss(img1, mods, img2, soft_triplet_loss=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_torch(step, steps)


def ours_tirg(steps: int) -> float:
    from configs import tirg as tirg_config
    from t2i_tf.datasets.css.convert import prepare_default_css
    from t2i_tf.tasks.tirg import TirgTask

    config = dict(tirg_config.PAPER, data_dir=prepare_default_css(), seed=0)
    return time_ours(TirgTask(config), steps)


# --------------------------------------------------------------------------------------------------- StackGAN
def official_stackgan(root: str, steps: int) -> float:
    """StackGAN-Pytorch Stage-I: one iteration of ``GANTrainer.train`` (trainer.py:170-194) at CUB settings."""
    import torch

    config, model, utils = _fresh_import(stackgan_scratch(root), ["miscc.config", "model", "miscc.utils"])
    cfg = config.cfg
    cfg.CUDA = False
    torch.nn.parallel.data_parallel = lambda module, inputs, device_ids=None, *a, **k: (  # one CPU, no replicas
        module(*inputs) if isinstance(inputs, tuple) else module(inputs))
    netG, netD = model.STAGE1_G(), model.STAGE1_D()
    netG.apply(utils.weights_init)
    netD.apply(utils.weights_init)
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam([p for p in netG.parameters() if p.requires_grad], lr=2e-4, betas=(0.5, 0.999))
    b = cfg.TRAIN.BATCH_SIZE
    g = torch.Generator().manual_seed(0)
    real = torch.rand(b, 3, 64, 64, generator=g) * 2 - 1
    emb = torch.randn(b, cfg.TEXT.DIMENSION, generator=g)
    noise = torch.empty(b, cfg.Z_DIM)
    ones, zeros = torch.ones(b), torch.zeros(b)

    def step():
        noise.normal_(0, 1)
        _, fake, mu, logvar = netG(emb, noise)
        netD.zero_grad()
        errD = utils.compute_discriminator_loss(netD, real, fake, ones, zeros, mu, [0])[0]
        errD.backward()
        optD.step()
        netG.zero_grad()
        errG = utils.compute_generator_loss(netD, fake, ones, mu, [0])
        (errG + utils.KL_loss(mu, logvar) * cfg.TRAIN.COEFF.KL).backward()
        optG.step()

    return time_torch(step, steps)


def ours_stackgan(steps: int) -> float:
    from configs import stackgan as stackgan_config
    from t2i_tf.datasets.css.captions import prepare_default_css_captions
    from t2i_tf.tasks.stackgan import StackGanTask

    data_dir = prepare_default_css_captions(image_size=64, attribute_embeddings=True)
    config = dict(stackgan_config.PAPER, dataset="css_captions", data_dir=data_dir, seed=0)
    return time_ours(StackGanTask(config), steps)


# ---------------------------------------------------------------------------------------------------- AttnGAN
def official_attngan(root: str, steps: int, n_words: int = 5450) -> float:
    """AttnGAN, stages 64 + 128: one iteration of ``condGANTrainer.train`` (trainer.py:245-299) at
    cfg/bird_attn2.yml settings with ``TREE.BRANCH_NUM = 2``; CUB's vocabulary size (5,450 words)."""
    import numpy as np
    import torch
    import torchvision
    from torch.utils import model_zoo

    config, model, losses = _fresh_import(attngan_scratch(root), ["miscc.config", "model", "miscc.losses"])
    model_zoo.load_url = lambda url, *a, **k: torchvision.models.inception_v3(
        weights=None, aux_logits=True, init_weights=False).state_dict()
    cfg = config.cfg
    cfg.CUDA, cfg.TRAIN.FLAG, cfg.TREE.BRANCH_NUM = False, True, 2
    cfg.GAN.GF_DIM, cfg.GAN.DF_DIM, cfg.GAN.Z_DIM, cfg.GAN.R_NUM = 32, 64, 100, 2  # bird_attn2.yml
    cfg.TRAIN.BATCH_SIZE, cfg.TEXT.EMBEDDING_DIM, cfg.TEXT.CAPTIONS_PER_IMAGE = 20, 256, 10
    cfg.TRAIN.SMOOTH.GAMMA1, cfg.TRAIN.SMOOTH.GAMMA2, cfg.TRAIN.SMOOTH.GAMMA3, cfg.TRAIN.SMOOTH.LAMBDA = 4., 5., 10., 5.
    b, nef, words = cfg.TRAIN.BATCH_SIZE, cfg.TEXT.EMBEDDING_DIM, cfg.TEXT.WORDS_NUM
    image_encoder = model.CNN_ENCODER(nef)
    for p in image_encoder.parameters():
        p.requires_grad = False
    image_encoder.eval()
    text_encoder = model.RNN_ENCODER(n_words, nhidden=nef)
    for p in text_encoder.parameters():
        p.requires_grad = False
    text_encoder.eval()
    netG, netsD = model.G_NET(), [model.D_NET64(), model.D_NET128()]
    avg_param_G = [p.detach().clone() for p in netG.parameters()]
    optsD = [torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999)) for d in netsD]
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)
    imgs = [torch.from_numpy(rng.uniform(-1, 1, (b, 3, s, s)).astype(np.float32)) for s in (64, 128)]
    lens = np.sort(rng.integers(5, words + 1, b))[::-1].copy()  # prepare_data sorts captions by length
    captions = torch.from_numpy(np.where(np.arange(words)[None] < lens[:, None],
                                         rng.integers(1, n_words, (b, words)), 0))
    cap_lens = torch.from_numpy(lens)
    class_ids = rng.integers(1, 201, b)
    real_labels, fake_labels, match_labels = torch.ones(b), torch.zeros(b), torch.arange(b)
    noise = torch.empty(b, cfg.GAN.Z_DIM)

    def step():
        hidden = text_encoder.init_hidden(b)
        words_embs, sent_emb = text_encoder(captions, cap_lens, hidden)
        words_embs, sent_emb = words_embs.detach(), sent_emb.detach()
        mask = (captions == 0)[:, :words_embs.size(2)]
        noise.normal_(0, 1)
        fake_imgs, _, mu, logvar = netG(noise, sent_emb, words_embs, mask)
        for d, opt_d, real in zip(netsD, optsD, imgs):
            d.zero_grad()
            losses.discriminator_loss(d, real, fake_imgs[netsD.index(d)], sent_emb, real_labels, fake_labels).backward()
            opt_d.step()
        netG.zero_grad()
        err_g, _ = losses.generator_loss(netsD, image_encoder, fake_imgs, real_labels, words_embs, sent_emb,
                                         match_labels, cap_lens, class_ids)
        (err_g + losses.KL_loss(mu, logvar)).backward()
        optG.step()
        with torch.no_grad():
            for p, avg_p in zip(netG.parameters(), avg_param_G):
                avg_p.mul_(0.999).add_(p, alpha=0.001)

    return time_torch(step, steps)


def ours_attngan(steps: int) -> float:
    import torch
    import torchvision

    from configs import attngan as attngan_config
    from configs import damsm as damsm_config
    from t2i_tf.datasets.css.captions import prepare_default_css_captions
    from t2i_tf.tasks.attngan import AttnGanTask
    from t2i_tf.tasks.damsm import DamsmTask
    from t2i_tf.train.trainer import Trainer

    data_dir = prepare_default_css_captions(image_size=128)
    damsm_dir = tempfile.mkdtemp(prefix="bench_damsm_")  # the paper DAMSM (Inception v3 at 299 px), one step
    weights = os.path.join(damsm_dir, "inception_v3_random.pth")  # as the official side: random, not ImageNet
    torch.save(torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), weights)
    Trainer(DamsmTask(dict(damsm_config.PAPER, dataset="css_captions", data_dir=data_dir, inception_weights=weights,
                           seed=0)), damsm_dir,
            num_iters=1, strategy="auto", log_every=1, eval_every=1000, ckpt_every=1000, steps_per_loop=1,
            verbose=False).fit()
    config = dict(attngan_config.PAPER, num_stages=2, dataset="css_captions", data_dir=data_dir,
                  damsm_workdir=damsm_dir, seed=0)
    return time_ours(AttnGanTask(config), steps)


# ------------------------------------------------------------------------------------------------------- main
ROWS = {
    "tirg": ("TIRG (ResNet-18, batch 32, 64 px)", official_tirg, ours_tirg),
    "stackgan": ("StackGAN Stage-I (64 px, batch 64)", official_stackgan, ours_stackgan),
    "attngan": ("AttnGAN 64+128 px (batch 20)", official_attngan, ours_attngan),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official_root", required=True,
                        help="dir holding the official repos (bare mirrors as fetched, or checkouts)")
    parser.add_argument("--models", default="tirg,stackgan,attngan")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per side (after a warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for both torch and TF")
    args = parser.parse_args()
    first_file = {"tirg": "main.py", "stackgan": "code/model.py", "attngan": "code/model.py"}
    for key in args.models.split(","):
        if key not in ROWS:
            sys.exit(f"error: --models: unknown {key!r} (expected some of {','.join(ROWS)})")
        read_official(args.official_root, key, first_file[key])  # a missing repo fails before any timing
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError:
        sys.exit("error: bench/official_step_time.py needs PyTorch and torchvision (pip install torch torchvision); "
                 "the project itself does not")
    import tensorflow as tf

    torch.set_num_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(args.threads, 2))
    rows = []
    for key in args.models.split(","):
        name, official, ours = ROWS[key]
        try:
            ms_official = official(args.official_root, args.steps)
            ms_ours = ours(args.steps)
        except Missing:
            raise
        except Exception as e:  # noqa: BLE001  (a failed row is reported, the others still run)
            print(f"{key}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            rows.append({"model": name, "ours / official": f"failed: {type(e).__name__}"})
            continue
        rows.append({"model": name, "ms/step official (PyTorch)": f"{ms_official:.0f}",
                     "ms/step ours (TF)": f"{ms_ours:.0f}", "ours / official": f"{ms_ours / ms_official:.2f}"})
        print(rows[-1], flush=True)
    print(f"\ntorch {torch.__version__}, tensorflow {tf.__version__}, {args.threads} thread(s), "
          f"{args.steps} timed steps each\n")
    common.print_table(rows, list(rows[0]))


if __name__ == "__main__":
    try:
        main()
    except Missing as e:
        sys.exit(str(e))
