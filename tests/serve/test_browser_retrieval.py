"""The retrieval demo page in headless Chromium against a live server: a TIRG export over the test split of a CSS
dataset folder; what the page shows is what the SavedModel ranks."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.serve.app import DemoApp
from t2i_tf.serve.browser import wait_for_state, wait_ready
from tests.serve.browser_mark import needs_browser

pytestmark = needs_browser


@pytest.fixture()
def tirg_export(css_tirg_export):
    return css_tirg_export


def css_test_split(raw):
    from t2i_tf.data.safe_pickle import load_npy
    from t2i_tf.datasets.css.generate import NPY_NAME

    return load_npy(os.path.join(raw, NPY_NAME))["test"]


def direct_ranking(export, raw, image, text):
    """Cosine scores of every test image (in file order) for (image, text), by the SavedModel itself."""
    sigs = tf.saved_model.load(export).signatures
    names = sorted(n for n in os.listdir(os.path.join(raw, "images")) if n.startswith("css_test_"))
    gallery = np.stack([np.asarray(Image.open(os.path.join(raw, "images", n)).convert("RGB")) for n in names])
    query = sigs["compose"](image=tf.constant(image[None]), text=tf.constant([text]))["embedding"].numpy()[0]
    return sigs["embed_image"](image=tf.constant(gallery))["embedding"].numpy() @ query


def results_on_page(driver):
    from selenium.webdriver.common.by import By

    tiles = driver.find_elements(By.CSS_SELECTOR, "#results .result")
    return [(int(t.get_attribute("data-id")), float(t.get_attribute("data-score")),
             t.find_element(By.CSS_SELECTOR, ".score").text, "expected" in t.get_attribute("class").split())
            for t in tiles]


def set_value(driver, element_id, value):
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, element_id)
    box.clear()
    box.send_keys(str(value))


def test_pick_a_gallery_image_and_a_held_out_query_and_see_the_exports_ranking(browser, live_server, tirg_export):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    export, raw, records = tirg_export
    base = live_server(DemoApp(export, gallery_dir=raw, data_dir=records))
    browser.get(base + "/")
    wait_ready(browser)
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-kind") == "retrieval"
    items = browser.find_elements(By.CSS_SELECTOR, "#gallery .gallery-item")
    assert len(items) == 48 and "48 of 60 images" in browser.find_element(By.ID, "gallery-note").text
    assert raw not in browser.page_source and export not in browser.page_source  # no server paths
    assert len(browser.find_elements(By.CSS_SELECTOR, "#examples .example")) > 0  # held-out instructions

    browser.find_element(By.ID, "submit").click()  # no source yet: the page says what to do
    assert wait_for_state(browser) == "error"
    assert "Choose a source image first" in browser.find_element(By.ID, "error").text

    source = browser.find_element(By.CSS_SELECTOR, "#gallery .gallery-item.has-queries")
    source_id = int(source.get_attribute("data-id"))
    source.click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#queries .query-example"))
    query_button = browser.find_elements(By.CSS_SELECTOR, "#queries .query-example")[0]
    text = query_button.text
    query_button.click()
    assert browser.find_element(By.ID, "text").get_attribute("value") == text
    set_value(browser, "top-k", 5)
    browser.find_element(By.ID, "submit").click()
    assert wait_for_state(browser) == "done"
    shown = results_on_page(browser)

    image = np.asarray(Image.open(os.path.join(raw, "images", f"css_test_{source_id:06d}.png")).convert("RGB"))
    scores = direct_ranking(export, raw, image, text)
    order = [int(i) for i in np.argsort(-scores, kind="stable") if i != source_id][:5]  # the source is left out
    assert [s[0] for s in shown] == order
    np.testing.assert_allclose([s[1] for s in shown], scores[order], atol=1e-5)
    assert [s[2] for s in shown] == [f"{scores[i]:.4f}" for i in order]

    # the expected target: the test images of the query's target scene, read from the CSS annotation file
    split = css_test_split(raw)
    mod = next(m for m in split["mods"] if m["to_str"] == text and source_id in list(m["from"]))
    target = list(mod["to"])[list(mod["from"]).index(source_id)]
    labels = list(split["labels"])
    expected = {i for i, lab in enumerate(labels) if lab == labels[target] and i != source_id}
    assert [s[3] for s in shown] == [i in expected for i in order]
    assert f"({len(expected)} in the gallery)" in browser.find_element(By.ID, "expected-note").text

    # an uploaded source is ranked against the whole gallery
    upload = os.path.join(os.path.dirname(export), "upload.png")
    Image.fromarray(image).save(upload)
    browser.find_element(By.ID, "upload").send_keys(upload)
    WebDriverWait(browser, 10).until(lambda d: "(upload)" in d.find_element(By.ID, "source-name").text)
    browser.find_element(By.ID, "submit").click()
    assert wait_for_state(browser) == "done"
    assert [s[0] for s in results_on_page(browser)] == [int(i) for i in np.argsort(-scores, kind="stable")[:5]]
    assert "Not a held-out query" in browser.find_element(By.ID, "expected-note").text


def test_a_text_of_unknown_words_is_shown_as_a_message(browser, live_server, tirg_export):
    from selenium.webdriver.common.by import By

    export, raw, records = tirg_export
    base = live_server(DemoApp(export, gallery_dir=raw, data_dir=records))
    browser.get(base + "/")
    wait_ready(browser)
    browser.find_elements(By.CSS_SELECTOR, "#gallery .gallery-item")[3].click()
    set_value(browser, "text", "zzz qqq")
    browser.find_element(By.ID, "submit").click()
    assert wait_for_state(browser) == "error"
    error = browser.find_element(By.ID, "error")
    assert error.is_displayed() and error.text == "no word of the text 'zzz qqq' is in the model's vocabulary"
    assert browser.find_elements(By.CSS_SELECTOR, "#results .result") == []
    set_value(browser, "top-k", 0)
    set_value(browser, "text", "make it red")
    browser.find_element(By.ID, "submit").click()
    assert wait_for_state(browser) == "error"
    assert browser.find_element(By.ID, "error").text == "top_k must be an integer in 1..64; got 0"
