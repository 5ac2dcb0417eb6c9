"""Record of how tests/import_torch/fixtures/stackgan/*.npz were made from the official StackGAN-Pytorch code.

Not a test (needs PyTorch; pytest does not collect it). Run once, from the repository root:

    python tests/import_torch/make_stackgan_fixtures.py \
        --mirror /work/.mirror/hanzhanggit+StackGAN-Pytorch/repo --out tests/import_torch/fixtures/stackgan

What it does:

1. Copies the official ``code/model.py`` and ``code/miscc/config.py`` (``git show HEAD:...`` of the bare mirror)
   into a scratch directory, unchanged, plus a 10-line ``easydict`` stand-in (the one import not installed here).
   Nothing else is patched: ``torch.autograd.Variable`` and ``torch.FloatTensor(...).normal_()`` still work in
   PyTorch 2 on the CPU.
2. Sets small sizes in ``cfg`` (TEXT.DIMENSION 16, Z_DIM 8, GAN.CONDITION_DIM 4, GF_DIM 4, DF_DIM 2 for Stage I
   and 1 for Stage II, R_NUM 2; ``cfg.CUDA = False``) and builds ``STAGE1_G``, ``STAGE1_D``,
   ``STAGE2_G(STAGE1_G())``, ``STAGE2_D`` with ``torch.manual_seed(0)``: PyTorch's default initialisation, every
   BatchNorm's weight and bias set to random values, and its running statistics calibrated (one train-mode
   forward of the fixture's inputs with momentum 1) and then perturbed by random amounts, so that eval-mode
   activations keep their scale and a wrong BN mapping shows.
3. Makes the CA noise injectable: ``CA_NET.reparametrize`` (code/model.py:59-66 draws
   ``eps = torch.FloatTensor(std.size()).normal_()``) is replaced, at run time, by ``eps * exp(logvar / 2) + mu``
   with ``eps`` taken from a queue the script fills (Stage-II's forward calls STAGE1_G's CA first, then its own).
4. Runs each network in eval mode (and the generators once more in train mode) and saves, per network,
   ``<name>.npz``: the state dict under its official names (``sd/<name>``) plus inputs and expected outputs (NCHW
   torch layout). Discriminator logits are taken before the final ``nn.Sigmoid`` (running ``outlogits[:-1]`` on
   the same ``cat(h_code, c_code tiled 4x4)`` as D_GET_LOGITS.forward, code/model.py:92-103), and the official
   sigmoid outputs are saved too. Stage-II images (256 px) are saved subsampled (every 8th pixel) plus two full
   16x16 corners, to keep the fixtures small.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script: the repo root on the path for the tests package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.import_torch.official_scratch import git_show, scratch_copy  # noqa: E402

def _scratch(mirror: str) -> str:
    return scratch_copy(mirror, {"model.py": git_show(mirror, "code/model.py"),
                                 "miscc/config.py": git_show(mirror, "code/miscc/config.py")}, "stackgan_official_")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirror", default="/work/.mirror/hanzhanggit+StackGAN-Pytorch/repo")
    ap.add_argument("--out", default="tests/import_torch/fixtures/stackgan")
    args = ap.parse_args()
    commit = subprocess.check_output(["git", "--git-dir", args.mirror, "rev-parse", "HEAD"], text=True).strip()
    sys.path.insert(0, _scratch(args.mirror))
    import torch
    from miscc.config import cfg
    import model as official

    cfg.CUDA = False
    cfg.TEXT.DIMENSION, cfg.Z_DIM, cfg.GAN.CONDITION_DIM, cfg.GAN.GF_DIM, cfg.GAN.R_NUM = 16, 8, 4, 4, 2
    eps_queue: list = []

    def reparametrize(self, mu, logvar):  # the official formula with eps from the queue
        return eps_queue.pop(0).mul(logvar.mul(0.5).exp()).add(mu)

    official.CA_NET.reparametrize = reparametrize

    def randomize_bn(net, gen):
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                n = m.num_features
                m.weight.data = torch.rand(n, generator=gen) + 0.5
                m.bias.data = torch.randn(n, generator=gen) * 0.1
                m.running_mean.data = torch.randn(n, generator=gen) * 0.1
                m.running_var.data = torch.rand(n, generator=gen) + 0.5

    def calibrate(net, forward):
        """Running stats = one train-mode batch's (momentum 1), then perturbed; momentum back to 0.1."""
        bns = [m for m in net.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
        for m in bns:
            m.momentum = 1.0
        net.train()
        with torch.no_grad():
            forward()
        for m in bns:
            m.momentum = 0.1
            n = m.num_features
            m.running_mean.data += 0.1 * torch.randn(n, generator=gen) * m.running_var.sqrt()
            m.running_var.data *= torch.rand(n, generator=gen) * 0.4 + 0.8
        net.eval()

    def sd(net):
        return {f"sd/{k}": v.detach().numpy().copy() for k, v in net.state_dict().items()}

    def d_logits(netd, head, images, c):
        h = netd(images)
        out = {"probs": head(h, c) if head.bcondition else head(h)}
        x = torch.cat((h, c.view(-1, head.ef_dim, 1, 1).repeat(1, 1, 4, 4)), 1) if head.bcondition else h
        out["logits"] = torch.nn.Sequential(*list(head.outlogits)[:-1])(x).view(-1)
        assert torch.allclose(torch.sigmoid(out["logits"]), out["probs"], atol=1e-6)
        return out

    def n(x):
        return x.detach().numpy().copy()

    os.makedirs(args.out, exist_ok=True)
    meta = {"official_commit": np.array(commit)}
    b, gen = 2, torch.Generator().manual_seed(1)
    text = torch.randn(b, 16, generator=gen)
    noise = torch.randn(b, 8, generator=gen)
    eps_a, eps_b, eps_c = (torch.randn(b, 4, generator=gen) for _ in range(3))

    # ---------------- Stage I
    torch.manual_seed(0)
    cfg.GAN.DF_DIM = 2
    g1, d1 = official.STAGE1_G(), official.STAGE1_D()
    randomize_bn(g1, gen)
    randomize_bn(d1, gen)
    eps_queue[:] = [eps_c]
    calibrate(g1, lambda: g1(text, noise))
    with torch.no_grad():
        eps_queue[:] = [eps_c]
        calib_images = g1(text, noise)[1]
    calibrate(d1, lambda: d_logits(d1, d1.get_cond_logits, calib_images, torch.rand(b, 4, generator=gen)))
    with torch.no_grad():
        eps_queue[:] = [eps_a]
        _, img, mu, logvar = g1(text, noise)
        cond = d_logits(d1, d1.get_cond_logits, img, mu)
    np.savez_compressed(os.path.join(args.out, "stage1_g.npz"), **meta, **sd(g1), text=n(text), noise=n(noise),
                        eps=n(eps_a), images=n(img), mu=n(mu), logvar=n(logvar))
    np.savez_compressed(os.path.join(args.out, "stage1_d.npz"), **meta, **sd(d1), images=n(img), c_code=n(mu),
                        cond_logits=n(cond["logits"]), cond_probs=n(cond["probs"]))
    # train mode: batch statistics, running statistics updated (momentum 0.1)
    g1.train()
    with torch.no_grad():
        eps_queue[:] = [eps_b]
        _, img_t, _, _ = g1(text, noise)
    np.savez_compressed(os.path.join(args.out, "stage1_g_train.npz"), **meta, eps=n(eps_b),
                        images_sub4=n(img_t[:, :, ::4, ::4]),
                        **{f"after/{k}": v.numpy().copy() for k, v in g1.state_dict().items() if "running" in k})

    # ---------------- Stage II
    torch.manual_seed(0)
    cfg.GAN.DF_DIM = 1
    g2 = official.STAGE2_G(official.STAGE1_G())
    d2 = official.STAGE2_D()
    randomize_bn(g2, gen)
    randomize_bn(d2, gen)
    eps_queue[:] = [eps_c, eps_c]
    calibrate(g2, lambda: g2(text, noise))
    rng = np.random.default_rng(2)
    d_images = rng.uniform(-1.0, 1.0, (b, 256, 256, 3)).astype(np.float32)  # NHWC, remade in the test
    d_c = torch.randn(b, 4, generator=gen)
    x = torch.from_numpy(d_images.transpose(0, 3, 1, 2).copy())
    calibrate(d2, lambda: (d_logits(d2, d2.get_cond_logits, x, d_c), d_logits(d2, d2.get_uncond_logits, x, None)))
    with torch.no_grad():
        eps_queue[:] = [eps_a, eps_b]  # STAGE1_G's CA first (model.py:243), then Stage-II's (model.py:247)
        low, img2, mu2, logvar2 = g2(text, noise)
        cond2 = d_logits(d2, d2.get_cond_logits, x, d_c)
        uncond2 = d_logits(d2, d2.get_uncond_logits, x, None)

    def sub(img):
        return {"sub8": n(img[:, :, ::8, ::8]), "top_left16": n(img[:, :, :16, :16]),
                "bottom_right16": n(img[:, :, -16:, -16:])}

    np.savez_compressed(os.path.join(args.out, "stage2_g.npz"), **meta, **sd(g2), text=n(text), noise=n(noise),
                        eps_stage1=n(eps_a), eps=n(eps_b), stage1_images=n(low), mu=n(mu2), logvar=n(logvar2),
                        **{f"images_{k}": v for k, v in sub(img2).items()})
    np.savez_compressed(os.path.join(args.out, "stage2_d.npz"), **meta, **sd(d2), images_rng_seed=np.array(2),
                        images_first=d_images.reshape(-1)[:8], c_code=n(d_c), cond_logits=n(cond2["logits"]),
                        cond_probs=n(cond2["probs"]), uncond_logits=n(uncond2["logits"]),
                        uncond_probs=n(uncond2["probs"]))
    # train mode: netG.train() puts its STAGE1_G submodule in train mode too; its frozen parameters
    # (requires_grad=False, model.py:199-201) do not stop BatchNorm's running statistics from updating.
    before = {k: v.clone() for k, v in g2.state_dict().items() if k.startswith("STAGE1_G.") and "running" in k}
    g2.train()
    with torch.no_grad():
        eps_queue[:] = [eps_c, eps_b]
        low_t, img2_t, _, _ = g2(text, noise)
    after = {k: v.numpy().copy() for k, v in g2.state_dict().items() if "running" in k}
    changed = [k for k in before if not np.array_equal(before[k].numpy(), after[k])]
    assert changed, "STAGE1_G running statistics did not change in train mode"
    np.savez_compressed(os.path.join(args.out, "stage2_g_train.npz"), **meta, eps_stage1=n(eps_c), eps=n(eps_b),
                        stage1_images_sub4=n(low_t[:, :, ::4, ::4]),
                        **{f"images_{k}": v for k, v in sub(img2_t).items()},
                        **{f"after/{k}": v for k, v in after.items()})
    print(f"wrote {args.out} from StackGAN-Pytorch {commit}; STAGE1_G running stats changed in train mode: "
          f"{len(changed)} of {len(before)}")


if __name__ == "__main__":
    main()
