"""The text-to-image and modify-by-text demo pages in headless Chromium against a live server: the images on the
page are the exports' own ``generate`` outputs (decoded from the page's data: URIs)."""

import base64
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i_tf.serve.app import DemoApp
from t2i_tf.serve.browser import wait_for_state, wait_ready
from tests.serve.browser_mark import needs_browser

pytestmark = needs_browser


def build_export(task, root):
    task.prepare(str(root / "run"))
    task.build(tf.distribute.get_strategy())
    task.export(str(root / "export"))
    return str(root / "export")


@pytest.fixture(scope="module")
def gan_export(captioned_css, tmp_path_factory):
    from configs import gan_cls as cfg
    from t2i_tf.tasks.gan_cls import GanClsTask

    task = GanClsTask(dict(cfg.TEST, data_dir=captioned_css[16], seed=0))
    return build_export(task, tmp_path_factory.mktemp("browser_gan"))


@pytest.fixture(scope="module")
def stage2_export(captioned_css, trained_stage1, tmp_path_factory):
    from configs import stackgan as cfg
    from t2i_tf.tasks.stackgan import StackGanTask

    task = StackGanTask(dict(cfg.TEST, data_dir=captioned_css[32], stage=2, stage1_workdir=trained_stage1, seed=0))
    return build_export(task, tmp_path_factory.mktemp("browser_stage2"))


@pytest.fixture(scope="module")
def attngan_export(captioned_css, trained_damsm, tmp_path_factory):
    from configs import attngan as cfg
    from t2i_tf.tasks.attngan import AttnGanTask

    task = AttnGanTask(dict(cfg.TEST, data_dir=captioned_css[16], damsm_workdir=trained_damsm, seed=0))
    return build_export(task, tmp_path_factory.mktemp("browser_attngan"))


def page_images(driver, selector):
    """uint8 [N, H, W, 3] of the images ``selector`` matches, decoded from their data: URIs."""
    from selenium.webdriver.common.by import By

    out = []
    for img in driver.find_elements(By.CSS_SELECTOR, selector):
        src = img.get_attribute("src")
        assert src.startswith("data:image/png;base64,")
        out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")))
    return np.stack(out)


def draw(driver, text, num_samples, seed):
    from selenium.webdriver.common.by import By

    for element_id, value in (("text", text), ("num-samples", num_samples), ("seed", seed)):
        box = driver.find_element(By.ID, element_id)
        box.clear()
        box.send_keys(str(value))
    driver.find_element(By.ID, "submit").click()
    return wait_for_state(driver)


def test_text_to_image_page_shows_the_exports_samples_for_a_held_out_caption(browser, live_server, gan_export,
                                                                             captioned_css):
    from selenium.webdriver.common.by import By

    base = live_server(DemoApp(gan_export, data_dir=captioned_css[16]))
    browser.get(base + "/")
    wait_ready(browser)
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-kind") == "text_to_image"
    example = browser.find_elements(By.CSS_SELECTOR, "#examples .example")[1]
    caption = example.text
    example.click()  # one click puts a held-out caption in the box
    assert browser.find_element(By.ID, "text").get_attribute("value") == caption
    assert draw(browser, caption, 3, 5) == "done"
    shown = page_images(browser, "#results .sample img.final")

    sig = tf.saved_model.load(gan_export).signatures["generate"]
    direct = sig(text=tf.constant([caption] * 3), seed=tf.constant(5, tf.int64))["images"].numpy()
    np.testing.assert_array_equal(shown, direct)
    assert draw(browser, caption, 3, 6) == "done"
    assert not np.array_equal(page_images(browser, "#results .sample img.final"), direct)  # the seed matters

    assert draw(browser, "zzz qqq", 2, 0) == "error"  # unknown words: a message in the page, no images
    assert browser.find_element(By.ID, "error").text == "no word of the text 'zzz qqq' is in the model's vocabulary"
    assert browser.find_elements(By.CSS_SELECTOR, "#results img") == []
    assert draw(browser, caption, 99, 0) == "error"
    assert browser.find_element(By.ID, "error").text == "num_samples must be an integer in 1..16; got 99"


def test_stackgan_page_shows_both_stages_and_attngan_the_words_attention(browser, live_server, stage2_export,
                                                                         attngan_export):
    from selenium.webdriver.common.by import By

    base = live_server(DemoApp([stage2_export, attngan_export]))
    caption = "a large red circle at the top left"
    browser.get(base + "/demo/stackgan")
    wait_ready(browser)
    assert draw(browser, caption, 2, 3) == "done"
    stages = tf.saved_model.load(stage2_export).signatures["generate_stages"](
        text=tf.constant([caption] * 2), seed=tf.constant(3, tf.int64))
    np.testing.assert_array_equal(page_images(browser, "#results .sample img.final"), stages["images"].numpy())
    np.testing.assert_array_equal(page_images(browser, "#results .sample img.stage1"), stages["stage1_images"].numpy())
    assert [f.text for f in browser.find_elements(By.CSS_SELECTOR, "#results .sample figcaption")] == ["Stage-I", "Stage-II"] * 2

    browser.find_element(By.LINK_TEXT, "attngan · text to image").click()
    wait_ready(browser)
    assert draw(browser, "A large red circle, at the top left!", 2, 4) == "done"
    out = tf.saved_model.load(attngan_export).signatures["generate_with_attention"](
        text=tf.constant(["A large red circle, at the top left!"] * 2), seed=tf.constant(4, tf.int64))
    np.testing.assert_array_equal(page_images(browser, "#results .sample img.final"), out["images"].numpy())
    words = ["a", "large", "red", "circle", "at", "the", "top", "left"]
    first = browser.find_elements(By.CSS_SELECTOR, "#results .sample")[0]
    assert [w.text for w in first.find_elements(By.CSS_SELECTOR, ".word-map")] == words  # a map under each word
    maps = page_images(first, ".word-map img")[..., 0].astype(np.float64)
    att = np.moveaxis(out["attention"].numpy()[0, :, :, :len(words)], -1, 0)
    low, high = att.min(axis=(1, 2), keepdims=True), att.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(maps, np.round((att - low) / np.maximum(high - low, 1e-8) * 255), atol=1)


@pytest.fixture(scope="module")
def modify_export(tiny_css, trained_tirg, tmp_path_factory):
    from configs import stackgan_tirg as cfg
    from t2i_tf.tasks.stackgan_tirg import StackGanTirgTask

    task = StackGanTirgTask(dict(cfg.TEST, data_dir=tiny_css[1], tirg_workdir=trained_tirg, seed=0))
    return build_export(task, tmp_path_factory.mktemp("browser_stackgan_tirg"))


def test_modify_page_generates_from_a_gallery_source_next_to_tirgs_retrieval(browser, live_server, modify_export,
                                                                              css_tirg_export):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.serve.test_browser_retrieval import direct_ranking

    tirg, raw, records = css_tirg_export
    base = live_server(DemoApp([modify_export, tirg], gallery_dir=raw, data_dir=records))
    browser.get(base + "/")  # several exports: an index of their pages
    browser.find_element(By.PARTIAL_LINK_TEXT, "Modify an image by text").click()
    wait_ready(browser)
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-kind") == "modify"
    source = browser.find_elements(By.CSS_SELECTOR, "#gallery .gallery-item.has-queries")[1]
    source_id = int(source.get_attribute("data-id"))
    source.click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#queries .query-example"))
    browser.find_elements(By.CSS_SELECTOR, "#queries .query-example")[0].click()
    text = browser.find_element(By.ID, "text").get_attribute("value")
    for element_id, value in (("num-samples", 2), ("seed", 1)):
        box = browser.find_element(By.ID, element_id)
        box.clear()
        box.send_keys(str(value))
    browser.find_element(By.ID, "submit").click()
    assert wait_for_state(browser) == "done"

    image = np.asarray(Image.open(f"{raw}/images/css_test_{source_id:06d}.png").convert("RGB"))
    direct = tf.saved_model.load(modify_export).signatures["generate"](
        image=tf.constant(np.stack([image] * 2)), text=tf.constant([text] * 2), seed=tf.constant(1, tf.int64))
    np.testing.assert_array_equal(page_images(browser, "#generated img.final"), direct["images"].numpy())
    scores = direct_ranking(tirg, raw, image, text)
    retrieved = [int(t.get_attribute("data-id")) for t in browser.find_elements(By.CSS_SELECTOR, "#retrieved .result")]
    assert retrieved == [int(i) for i in np.argsort(-scores, kind="stable") if i != source_id][:3]


def test_scene_graph_page_draws_a_caption_and_explains_a_bad_graph(browser, live_server, captioned_css,
                                                                   tmp_path_factory):
    from selenium.webdriver.common.by import By

    from configs import sg2im as cfg
    from t2i_tf.data import scene_graph as sg
    from t2i_tf.tasks.sg2im import Sg2ImTask

    export = build_export(Sg2ImTask(dict(cfg.TEST, data_dir=captioned_css[16], seed=0)),
                          tmp_path_factory.mktemp("browser_sg2im"))
    base = live_server(DemoApp(export, data_dir=captioned_css[16]))
    browser.get(base + "/")
    wait_ready(browser)
    caption = browser.find_elements(By.CSS_SELECTOR, "#examples .example")[0].text
    assert draw(browser, caption, 2, 9) == "done"
    objects, triples = sg.pad_graphs([sg.read_graph(caption)])
    direct = tf.saved_model.load(export).signatures["generate"](
        objects=tf.constant(np.repeat(objects, 2, 0), tf.int32), triples=tf.constant(np.repeat(triples, 2, 0), tf.int32),
        seed=tf.constant(9, tf.int64))["images"].numpy()
    np.testing.assert_array_equal(page_images(browser, "#results img.final"), direct)
    assert draw(browser, '{"objects": ["large red circle"], "relationships": [[0, "floats over", "image"]]}', 1, 0) == "error"
    assert "floats over" in browser.find_element(By.ID, "error").text
    assert draw(browser, "/etc/passwd.json", 1, 0) == "error"
    assert browser.find_element(By.ID, "error").text.startswith("the server reads no files")
