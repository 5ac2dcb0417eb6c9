"""``python -m t2i_tf.serve --export_dir=DIR [--export_dir=DIR2 ...] [--gallery_dir=DIR] [--data_dir=DIR]
[--host=H] [--port=P]``: one server, a demo page per export."""

from __future__ import annotations

import argparse
import sys

from t2i_tf.errors import UserError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m t2i_tf.serve",
                                description="Serve t2i_tf SavedModel exports as web demos (docs/demo.md).")
    p.add_argument("--export_dir", required=True, action="append",
                   help="a directory written by main.py --mode=export; repeat it to serve several exports "
                        "(e.g. stackgan_tirg next to the tirg export it is compared with)")
    p.add_argument("--gallery_dir", default=None,
                   help="images to pick sources from and retrieve from (needed for tirg exports): a folder of "
                        ".png/.jpg images, or a CSS dataset folder (its test split, with its held-out queries)")
    p.add_argument("--data_dir", default=None,
                   help="converted records whose test split gives the example captions / instructions "
                        "(default: the data_dir of the run each export was made from, when it is known)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    args = p.parse_args(argv)
    from t2i_tf.serve.web import serve

    try:
        serve(args.export_dir, args.host, args.port, args.gallery_dir, args.data_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
