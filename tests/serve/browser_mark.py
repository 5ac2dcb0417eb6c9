"""``needs_browser``: the mark of the browser test modules. Without headless Chromium they are skipped with the
reason before any fixture (export, server) is built, unless ``T2I_REQUIRE_BROWSER=1`` (CI), where the ``browser``
fixture fails instead."""

import os

import pytest

from t2i_tf.serve.browser import missing_browser

REASON = missing_browser()
needs_browser = [
    pytest.mark.skipif(bool(REASON) and os.environ.get("T2I_REQUIRE_BROWSER") != "1",
                       reason=f"browser tests need headless Chromium: {REASON}"),
    pytest.mark.usefixtures("browser"),
]
