"""Screenshots of every demo page, made in headless Chromium through the page itself (as a user would use it):

    python -m t2i_tf.serve.screenshots --export_dir=runs/tirg/export --export_dir=... \
        [--gallery_dir=CSS_DIR] [--data_dir=RECORDS] [--out_dir=docs/images]

writes ``<out_dir>/demo_<export>.png`` (``demo_tirg.png``, ``demo_attngan.png``, ...): the page after one request
on a held-out example (the first gallery image with held-out queries and its first query, or the first example
caption; on a draw-and-edit page the first 3 turns of the first held-out episode, from a blank canvas). The
server runs in this process on a free localhost port; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from t2i_tf.errors import UserError

DEFAULT_CAPTION = "a large red circle at the top left"
DEFAULT_INSTRUCTION = "add large red circle to top-left"


def _click_first(driver, selector: str, shortest: bool = False) -> bool:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, selector)
    if shortest:
        found = sorted(found, key=lambda e: len(e.text))
    if found:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", found[0])
        found[0].click()
    return bool(found)


def shoot(driver, base_url: str, key: str, kind: str, path: str, num_samples: int = 4, seed: int = 0) -> str:
    """Open the demo ``key``, run one held-out example through the page, save a full-page PNG at ``path``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from t2i_tf.serve.browser import wait_for_state, wait_ready

    driver.set_window_size(1280, 1000)
    driver.get(f"{base_url}/demo/{key}")
    wait_ready(driver)
    if kind == "draw_edit":
        return _shoot_episode(driver, key, path, seed)
    if kind in ("retrieval", "modify"):
        if not _click_first(driver, "#gallery .gallery-item.has-queries"):
            _click_first(driver, "#gallery .gallery-item")
        try:
            WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#queries .query-example"))
            _click_first(driver, "#queries .query-example")
        except Exception:  # noqa: BLE001 -- no held-out query for this image: take an example text
            _click_first(driver, "#examples .example")
    elif kind != "generic" and not _click_first(driver, "#examples .example", shortest=True):
        driver.find_element(By.ID, "text").send_keys(DEFAULT_CAPTION)
    for element_id, value in (("num-samples", num_samples), ("seed", seed), ("top-k", 8)):
        found = driver.find_elements(By.ID, element_id)
        if found:
            found[0].clear()
            found[0].send_keys(str(value))
    if kind != "generic":
        driver.find_element(By.ID, "submit").click()
        state = wait_for_state(driver, timeout=300)
        if state == "error":
            print(f"{key}: the page shows an error: {driver.find_element(By.ID, 'error').text}", file=sys.stderr)
    driver.execute_script("window.scrollTo(0, 0); "
                          "document.querySelectorAll('.examples, .queries').forEach(e => { e.scrollTop = 0; })")
    return _save_full_page(driver, path)


def _save_full_page(driver, path: str) -> str:
    height, chrome = driver.execute_script("return [document.documentElement.scrollHeight, "
                                           "window.outerHeight - window.innerHeight]")
    driver.set_window_size(1280, min(max(int(height), 600) + int(chrome), 4000))
    driver.save_screenshot(path)
    return path


def _shoot_episode(driver, key: str, path: str, seed: int, turns: int = 3) -> str:
    """A draw-and-edit page after ``turns`` turns of its first example episode (fixed examples without records)."""
    from selenium.webdriver.common.by import By

    from t2i_tf.serve.browser import wait_for_state

    buttons = driver.find_elements(By.CSS_SELECTOR, "#examples .episode")
    buttons = (buttons[0].find_elements(By.CSS_SELECTOR, ".example") if buttons
               else driver.find_elements(By.CSS_SELECTOR, "#examples .example"))
    texts = [b.text for b in buttons][:turns] or [DEFAULT_INSTRUCTION]
    seed_box = driver.find_element(By.ID, "seed")
    seed_box.clear()
    seed_box.send_keys(str(seed))
    for text in texts:
        box = driver.find_element(By.ID, "text")
        box.clear()
        box.send_keys(text)
        driver.find_element(By.ID, "submit").click()
        if wait_for_state(driver, timeout=300) == "error":
            print(f"{key}: the page shows an error: {driver.find_element(By.ID, 'error').text}", file=sys.stderr)
            break
    driver.execute_script("window.scrollTo(0, 0)")
    return _save_full_page(driver, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m t2i_tf.serve.screenshots", description=__doc__.split("\n\n")[0])
    p.add_argument("--export_dir", required=True, action="append", help="an export to serve (repeat for several)")
    p.add_argument("--gallery_dir", default=None, help="as for python -m t2i_tf.serve")
    p.add_argument("--data_dir", default=None, help="as for python -m t2i_tf.serve")
    p.add_argument("--out_dir", default=os.path.join("docs", "images"))
    p.add_argument("--num_samples", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from t2i_tf.serve.app import DemoApp
    from t2i_tf.serve.browser import headless_chromium
    from t2i_tf.serve.web import make_server

    try:
        app = DemoApp(args.export_dir, args.gallery_dir, args.data_dir)
        driver = headless_chromium()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    server = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.makedirs(args.out_dir, exist_ok=True)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for key, demo in app.demos.items():
            path = shoot(driver, base, key, demo.kind, os.path.join(args.out_dir, f"demo_{key}.png"),
                         args.num_samples, args.seed)
            print(f"wrote {path}")
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
