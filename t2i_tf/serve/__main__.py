"""``python -m t2i_tf.serve --export_dir=DIR [--gallery_dir=DIR] [--host=H] [--port=P]``."""

from __future__ import annotations

import argparse
import sys

from t2i_tf.errors import UserError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m t2i_tf.serve", description="Serve a t2i_tf SavedModel export as a web demo.")
    p.add_argument("--export_dir", required=True, help="a directory written by main.py --mode=export")
    p.add_argument("--gallery_dir", default=None, help="tirg exports: directory of .png/.jpg images to retrieve from")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    args = p.parse_args(argv)
    from t2i_tf.serve.web import serve

    try:
        serve(args.export_dir, args.host, args.port, args.gallery_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
