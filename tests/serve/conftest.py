"""Browser fixtures of the demo tests: headless Chromium (skipped, with the reason, when it is not installed; a
failure instead when ``T2I_REQUIRE_BROWSER=1``, as CI sets it) and a live demo server on a free localhost port."""

import os
import threading

import pytest

from t2i_tf.serve.browser import headless_chromium, missing_browser


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every browser test of the session."""
    reason = missing_browser()
    if reason and os.environ.get("T2I_REQUIRE_BROWSER") == "1":
        pytest.fail(f"T2I_REQUIRE_BROWSER=1 but headless Chromium cannot start: {reason}")
    if reason:
        pytest.skip(f"browser tests need headless Chromium: {reason}")
    driver = headless_chromium()
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture()
def live_server():
    """start(app) -> base URL of a real HTTP server for ``app`` on a free port, shut down after the test."""
    from t2i_tf.serve.web import make_server

    servers = []

    def start(app):
        server = make_server(app, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def css_tirg_export(tiny_css, tmp_path_factory):
    """An (untrained) TIRG export of the tiny CSS records: (export dir, raw CSS dir, records dir)."""
    import tensorflow as tf

    from configs import tirg as cfg
    from t2i_tf.tasks.tirg import TirgTask

    raw, records = tiny_css
    root = tmp_path_factory.mktemp("browser_tirg")
    task = TirgTask(dict(cfg.TEST, data_dir=records, seed=0))
    task.prepare(str(root / "run"))
    task.build(tf.distribute.get_strategy())
    task.export(str(root / "export"))
    return str(root / "export"), raw, records
