"""Peak resident memory of a few training steps (and the evaluation that ends them) per model and preset.

Each run is ``python main.py --model=M --preset=P --num_iters=N ...`` in its own process, in a fresh temporary
workdir; the whole process tree's RSS is sampled every 50 ms and the run is stopped (reported as "> cap") when it
passes ``--cap_mb`` (so a preset too big for the machine does not take it down). The paper presets read a
synthetic CUB-like record set (``--data_root``: made on first use: 304 px JPEG crops, 10 captions and 10
1024-d char-CNN-RNN-like embeddings per image, 20 train / 10 test classes) and, for DAMSM / AttnGAN, a
randomly initialised torchvision Inception-v3 ``.pth`` (same shapes as ``inception_v3_google-*.pth``: memory does
not depend on the weights' values). CPU presets use their own generated CSS data. Chained runs (StackGAN
Stage-II, AttnGAN) use the workdir of the run before them.

    python bench/peak_memory.py --runs=cpu            # every model's CPU preset
    python bench/peak_memory.py --runs=cub_cpu        # the CPU presets on CUB-like records
    python bench/peak_memory.py --runs=paper --cap_mb=12000
    python bench/peak_memory.py --runs=damsm:paper,attngan:paper:batch_size=2
    python bench/peak_memory.py --keep --runs=damsm:paper                      # then reuse its workdir:
    python bench/peak_memory.py --named=damsm=/tmp/t2i_bench_memory/run0_damsm_paper --runs=attngan:paper:batch_size=4
    python bench/peak_memory.py --named=attn=RUN_DIR --runs=attngan:paper:mode=eval:_workdir={attn}:eval_images=100

Each row also splits the peak by phase: setup (imports, build, checkpoint restore, input pipeline), train (the
steps and their TensorBoard samples), eval (the run's closing evaluation; all of a --mode=eval run).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# (model, preset, extra flags); a "{stage1}" / "{damsm}" placeholder is the workdir of that earlier run.
RUNS = {
    "cpu": [("gan_cls", "cpu", {}), ("stackgan", "cpu", {"_name": "stage1"}),
            ("stackgan", "cpu", {"stage": 2, "stage1_workdir": "{stage1}"}), ("damsm", "cpu", {"_name": "damsm"}),
            ("attngan", "cpu", {"damsm_workdir": "{damsm}"}), ("tirg", "cpu", {})],
    "paper": [("gan_cls", "paper", {"data_dir": "{t2i}"}),
              ("stackgan", "paper", {"data_dir": "{t2i}", "_name": "stage1"}),
              ("stackgan", "paper", {"stage": 2, "stage1_workdir": "{stage1}", "data_dir": "{t2i}"}),
              ("damsm", "paper", {"data_dir": "{t2i}", "inception_weights": "{inception}", "_name": "damsm"}),
              ("attngan", "paper", {"data_dir": "{t2i}", "damsm_workdir": "{damsm}"}),
              ("tirg", "paper", {})],
    # The CPU presets on CUB-like records (the README's CUB CPU recipe): flips come back on by themselves.
    "cub_cpu": [("gan_cls", "cpu", {"data_dir": "{t2i}", "image_size": 64}),
                ("stackgan", "cpu", {"data_dir": "{t2i}", "_name": "stage1"}),
                ("stackgan", "cpu", {"stage": 2, "stage1_workdir": "{stage1}", "data_dir": "{t2i}"}),
                ("damsm", "cpu", {"data_dir": "{t2i}", "_name": "damsm"}),
                ("attngan", "cpu", {"data_dir": "{t2i}", "damsm_workdir": "{damsm}"})],
}


def make_t2i_records(out_dir: str, train_classes: int = 20, test_classes: int = 10, per_class: int = 10,
                     side: int = 304) -> str:
    """A CUB-like text-to-image record set (what datasets/cub/convert.py writes, with embeddings)."""
    import io

    import numpy as np
    from PIL import Image

    from t2i_tf.datasets.t2i_common import Item, T2IWriter, item_embeddings

    if os.path.isfile(os.path.join(out_dir, "info.json")):
        return out_dir
    rng = np.random.default_rng(0)
    words = ["this", "bird", "has", "a", "small", "short", "long", "red", "blue", "yellow", "white", "black", "brown",
             "wing", "beak", "belly", "head", "tail", "crown"]
    writer = T2IWriter(out_dir, "cub")

    def items(first: int, count: int):
        for c in range(first, first + count):
            for k in range(per_class):
                low = rng.uniform(0, 255, (side // 16, side // 16, 3)).astype(np.uint8)
                img = Image.fromarray(low).resize((side, side), Image.BICUBIC)
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=90)
                caps = [" ".join(rng.choice(words, 12)) for _ in range(10)]
                emb = rng.normal(size=(10, 1024)).astype(np.float32)
                yield Item(name=f"{c:03d}.Class_{c}/Class_{c}_{k:04d}", class_id=c, image_bytes=buf.getvalue(),
                           captions=caps, embeddings=emb)

    writer.write_split("train", items(1, train_classes), item_embeddings)
    writer.write_split("test", items(train_classes + 1, test_classes), item_embeddings)
    writer.finish(f"synthetic: classes 1-{train_classes} train, the rest test", {"synthetic": True})
    return out_dir


def make_inception_pth(path: str) -> str:
    """A randomly initialised torchvision Inception-v3 state dict (the shapes of inception_v3_google-*.pth)."""
    if not os.path.isfile(path):  # in its own process: torch imported after TensorFlow can crash
        code = ("import sys, torch, torchvision; net = torchvision.models.inception_v3(weights=None, aux_logits=True, "
                "init_weights=True); torch.save(net.state_dict(), sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, path], check=True)
    return path


def tree_rss(proc) -> int:
    """Resident bytes of ``proc`` and its children."""
    import psutil

    total = 0
    try:
        for p in [proc] + proc.children(recursive=True):
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


# Log lines that end a phase of a run (the Trainer's and the CLI's own output): setup (build, restore, data) ends when
# training starts, training (its steps and TensorBoard samples) with the last step's log line, then the evaluation.
PHASE_ENDS = (("setup", re.compile(r"^training \S+ from step")),
              ("train", re.compile(r"^step (\d+)/\1\b")))
PHASES = ("setup", "train", "eval")


def run_one(args: list[str], cap_mb: float, log_path: str) -> tuple[float, float, int, bool, dict[str, float]]:
    """(peak RSS MiB, seconds, exit code, stopped at the cap, peak MiB per phase) of ``python main.py *args``.

    Phases (see ``PHASE_ENDS``): ``setup`` (imports, build, restore, dataset), ``train`` (the steps and their
    summaries), ``eval`` (everything after the last step: the closing evaluation; for --mode=eval, the evaluation).
    A phase's peak is the highest tree RSS sampled while it ran (RSS is not given back between phases, so a later
    phase's peak includes what earlier ones left allocated).
    """
    import psutil

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    with open(log_path, "w") as log, open(log_path) as reader:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args], stdout=log,
                                 stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        proc = psutil.Process(child.pid)
        peak, capped = 0, False
        # --mode=eval logs nothing between its restore and its metrics: the whole run counts as "eval"
        phase, phase_peaks, pending = (2 if "--mode=eval" in args else 0), {}, ""
        while child.poll() is None:
            rss = tree_rss(proc)
            peak = max(peak, rss)
            phase_peaks[PHASES[phase]] = max(phase_peaks.get(PHASES[phase], 0), rss)
            pending += reader.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                if phase < len(PHASE_ENDS) and PHASE_ENDS[phase][1].search(line):
                    phase += 1
            if peak > cap_mb * 2**20:
                capped = True
                child.kill()
                break
            time.sleep(0.05)
        code = child.wait()
        return (peak / 2**20, time.perf_counter() - start, code, capped,
                {k: v / 2**20 for k, v in phase_peaks.items()})


def flag_value(v, names: dict[str, str]) -> str:
    v = str(v)
    for key, path in names.items():
        v = v.replace("{" + key + "}", path)
    return v


def parse_runs(spec: str) -> list[tuple[str, str, dict]]:
    """'cpu', 'paper', or model:preset[:flag=value...] items separated by commas."""
    out = []
    for item in spec.split(","):
        if item in RUNS:
            out += RUNS[item]
            continue
        model, preset, *flags = item.split(":")
        extra = dict(f.split("=", 1) for f in flags)
        defaults = next((e for m, p, e in RUNS.get(preset, []) if m == model and
                         str(e.get("stage", 1)) == str(extra.get("stage", 1))), {})
        out.append((model, preset, dict(defaults, **extra)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="cpu", help="cpu | paper | model:preset[:flag=value...],... (see RUNS)")
    p.add_argument("--steps", type=int, default=2, help="training steps per run (then the run's evaluation)")
    p.add_argument("--cap_mb", type=float, default=10000, help="stop a run whose memory passes this many MiB")
    p.add_argument("--data_root", default=os.path.join(tempfile.gettempdir(), "t2i_bench_memory"))
    p.add_argument("--keep", action="store_true", help="keep the workdirs and logs under --data_root")
    p.add_argument("--named", action="append", default=[], metavar="NAME=PATH",
                   help="an existing workdir for a {NAME} placeholder (e.g. damsm=/tmp/.../run0_damsm_paper), so a "
                        "chained run does not train its parent again")
    a = p.parse_args()
    os.makedirs(a.data_root, exist_ok=True)
    names: dict[str, str] = dict(item.split("=", 1) for item in a.named)
    runs = parse_runs(a.runs)
    if any("{t2i}" in str(v) for _, _, e in runs for v in e.values()):
        names["t2i"] = make_t2i_records(os.path.join(a.data_root, "t2i"))
    if any("{inception}" in str(v) for _, _, e in runs for v in e.values()):
        names["inception"] = make_inception_pth(os.path.join(a.data_root, "inception_v3_google-random.pth"))
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; phases: setup (build, restore, "
          "data), train (steps + summaries), eval (the closing evaluation; all of --mode=eval)")
    print("| model | preset | batch | flags | peak RSS MiB | setup | train | eval | s | exit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i, (model, preset, extra) in enumerate(runs):
        extra = dict(extra)
        name = extra.pop("_name", None)
        given = extra.pop("_workdir", None)  # an existing run (e.g. for --mode=eval): used as is, not deleted
        workdir = flag_value(given, names) if given else os.path.join(a.data_root, f"run{i}_{model}_{preset}")
        if not given:
            shutil.rmtree(workdir, ignore_errors=True)
        flags = {k: flag_value(v, names) for k, v in extra.items()}
        args = [f"--model={model}", f"--preset={preset}", f"--num_iters={a.steps}", f"--workdir={workdir}",
                "--log_every=1"] + [f"--{k}={v}" for k, v in flags.items()]
        from t2i_tf.registry import lookup

        config_module, _ = lookup(model)
        batch = flags.get("batch_size", config_module.SCHEMA.preset(preset)["batch_size"])
        log_path = os.path.join(a.data_root, f"run{i}_{model}_{preset}.log")
        peak, seconds, code, capped, phases = run_one(args, a.cap_mb, log_path)
        if name:
            names[name] = workdir
        shown = " ".join(f"--{k}={v}" for k, v in extra.items() if k not in ("data_dir", "inception_weights",
                                                                             "stage1_workdir", "damsm_workdir"))
        peak_text = f"> {a.cap_mb:.0f} (stopped)" if capped else f"{peak:.0f}"
        per_phase = " | ".join(f"{phases[k]:.0f}" if k in phases else "-" for k in PHASES)
        print(f"| {model} | {preset} | {batch} | {shown} | {peak_text} | {per_phase} | {seconds:.0f} | {code} |",
              flush=True)
        if code != 0 and not capped:
            with open(log_path) as f:
                tail = [line for line in f.read().splitlines() if line.strip()][-3:]
            print("    " + " / ".join(tail)[:400], flush=True)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if not a.keep:
        for entry in os.listdir(a.data_root):
            if entry.startswith("run"):
                path = os.path.join(a.data_root, entry)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


if __name__ == "__main__":
    main()
