"""The Gradio demo page (demo/app.py): served on loopback from a subprocess with a tiny demo
checkpoint trained here, driven in headless Chromium, and called through its API."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

if not os.environ.get("CI"):  # CI installs the demo extra: a missing Gradio must fail there
    pytest.importorskip("gradio", reason='the demo app needs Gradio: pip install -e ".[demo]"')

from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw
from transformers import pipeline

import processing  # noqa: F401  (registers the tasks)
import run_mie

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "demo" / "app.py"
POST = "so proud of Jordan right now"
STORED_CONTEXT = "a portrait of a man with short hair"
# The demo config made tiny: 30 steps at a high learning rate teach it that the names are entities.
TINY = ["--demo_train_size", "240", "--demo_validation_size", "16", "--demo_test_size", "16", "--num_train_epochs", "2",
        "--text_config", json.dumps({"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                     "intermediate_size": 32, "max_position_embeddings": 64}),
        "--head_hidden_size", "16", "--feature_embedding_size", "8", "--fusion_num_heads", "2", "--image_size", "16",
        "--max_length", "32", "--per_device_train_batch_size", "16", "--learning_rate", "2e-2",
        "--encoder_learning_rate", "2e-2", "--report_to", "none", "--do_eval", "false", "--save_strategy", "no",
        "--eval_strategy", "no", "--load_best_model_at_end", "false", "--disable_tqdm", "true"]  # fmt: skip


@pytest.fixture(scope="module")
def app():
    """demo/app.py as a module (demo/ is a Space's folder, not a package)."""
    spec = importlib.util.spec_from_file_location("demo_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-app") / "checkpoint"
    run_mie.main([str(ROOT / "configs" / "demo.json"), "--output_dir", str(out), *TINY])
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A red disc (the demo corpus's picture of a person), a context store that knows it by its
    file name, and a file that is not an image."""
    folder = tmp_path_factory.mktemp("demo-files")
    disc = Image.new("RGB", (64, 64), (200, 200, 200))
    ImageDraw.Draw(disc).ellipse((20, 20, 44, 44), fill=(220, 50, 60))
    disc.save(folder / "disc.png")
    record = {"image_id": "disc.png", "context": STORED_CONTEXT, "generator": "test", "source": "hand"}
    (folder / "contexts.jsonl").write_text(json.dumps(record) + "\n")
    (folder / "notes.png").write_text("not a picture")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(checkpoint, files):
    """The app, started as the README says, on 127.0.0.1 and a free port; stopped at the end."""
    url = f"http://127.0.0.1:{free_port()}/"
    log = files / "server.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False")  # fmt: skip
    command = [sys.executable, str(APP), "--model", str(checkpoint), "--context_store", str(files / "contexts.jsonl"),
               "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1].strip("/")]  # fmt: skip
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the app did not answer on {url} within 240 s:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def nlp(checkpoint, files):
    return pipeline("multimodal-ner", model=str(checkpoint), context_store=str(files / "contexts.jsonl"))


def chromium():
    """Headless Chromium through Debian's chromium and chromium-driver; skipped where they are not
    installed, except in CI (which installs them)."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        message = (
            "the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        )
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs them")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1200"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def messages(page) -> list[str]:
    """The texts of the message boxes (toasts) the page shows."""
    from selenium.webdriver.common.by import By

    return [toast.text for toast in page.find_elements(By.CSS_SELECTOR, "[data-testid=toast-text]")]


def test_page_in_a_browser(server, files, nlp):
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    expected = nlp(POST, image=str(files / "disc.png"))  # the store gives the context, by the file name
    assert "Jordan" in [entity["word"] for entity in expected], "the tiny demo checkpoint finds the name"

    browser = chromium()
    try:
        wait = WebDriverWait(browser, 120, ignored_exceptions=(StaleElementReferenceException,))
        browser.get(server)
        post = wait.until(lambda page: page.find_element(By.CSS_SELECTOR, "#post textarea"))
        post.send_keys(POST)
        browser.find_element(By.CSS_SELECTOR, "#picture input[type=file]").send_keys(str(files / "disc.png"))
        # The upload fills the context box from the store.
        context = browser.find_element(By.CSS_SELECTOR, "#context textarea")
        wait.until(lambda page: context.get_property("value") == STORED_CONTEXT)
        browser.find_element(By.ID, "extract").click()

        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#entities .highlighted"))
        highlighted = [
            (span.find_element(By.CSS_SELECTOR, ".text").text, span.find_element(By.CSS_SELECTOR, ".label").text)
            for span in browser.find_elements(By.CSS_SELECTOR, "#entities .highlighted")
        ]
        assert highlighted == [(entity["word"], entity["entity_group"]) for entity in expected]
        source = browser.find_element(By.CSS_SELECTOR, "#context-source textarea")
        assert source.get_property("value") == "store"
        screenshot = ROOT / "runs" / "demo_app.png"
        screenshot.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(screenshot))
        print(f"screenshot of the page after a prediction: {screenshot}")

        post.send_keys(Keys.CONTROL, "a")
        post.send_keys(Keys.BACKSPACE)
        browser.find_element(By.ID, "extract").click()
        try:
            wait.until(lambda page: any(text.startswith("The post is empty") for text in messages(page)))
        except TimeoutException:
            pytest.fail(f"no message for the empty post; the page shows {messages(browser)}")
    finally:
        browser.quit()


def test_api_gives_the_pipeline_entities(server, files, nlp):
    client = Client(server, verbose=False)
    given = "a wide landscape with hills under a blue sky"
    for context, source in ((given, "given"), ("", "store")):
        highlighted, table, relations, used, used_source = client.predict(
            POST, handle_file(str(files / "disc.png")), context, api_name="/extract"
        )
        expected = nlp(POST, image=str(files / "disc.png"), context=context or None)
        assert [(e["word"], e["entity_group"]) for e in expected] == [
            (token["token"], token["class_or_confidence"]) for token in highlighted if token["class_or_confidence"]
        ]
        assert [row[:2] for row in table["data"]] == [[e["word"], e["entity_group"]] for e in expected]
        assert [row[2] for row in table["data"]] == pytest.approx([e["score"] for e in expected], abs=1e-3)
        assert relations["data"] == [] and (used, used_source) == (context or STORED_CONTEXT, source)

    for post, picture, message in (
        ("  ", None, "The post is empty"),
        (POST, handle_file(str(files / "notes.png")), "The picture 'notes.png' could not be opened"),
    ):
        with pytest.raises(AppError, match=message):
            client.predict(post, picture, "", api_name="/extract")


def test_context_box_follows_the_uploaded_picture(app, nlp, files):
    extractor = app.Extractor(nlp)
    stored = {"path": str(files / "disc.png"), "orig_name": "disc.png"}  # Gradio's record of an upload
    unknown = {"path": str(files / "disc.png"), "orig_name": "photo.png"}
    context, suggestion = extractor.suggest_context(stored, "", None)
    assert context == STORED_CONTEXT and suggestion == {"context": STORED_CONTEXT, "source": "store"}
    assert extractor.suggest_context(unknown, STORED_CONTEXT, suggestion) == ("", None)  # not this picture's
    assert extractor.suggest_context(unknown, "a man", suggestion) == ("a man", None)  # typed by the visitor

    *_, used, source = extractor.extract(POST, stored, STORED_CONTEXT, suggestion)
    assert (used, source) == (STORED_CONTEXT, "store")
    *_, used, source = extractor.extract(POST, stored, "a man on a stage", suggestion)
    assert (used, source) == ("a man on a stage", "given")
    *_, used, source = extractor.extract(POST, unknown, "", None)
    assert (used, source) == ("", "none")


def test_long_post_is_read_in_windows_with_a_warning(app, nlp):
    extractor = app.Extractor(nlp)
    words = " ".join(["so proud of Jordan ,"] * 20)
    with pytest.warns(UserWarning, match=r"read in \d+ overlapping windows"):  # a toast in the page
        highlighted, *_ = extractor.extract(words, None, "a portrait of a man", None)
    assert highlighted["entities"] == nlp(words, context="a portrait of a man")


def test_relations_of_a_word_pair_checkpoint_fill_their_table(app):
    austin = {"entity_group": "PER", "word": "Austin", "start": 0, "end": 6, "score": 0.9}
    savannah = {"entity_group": "PER", "word": "Savannah", "start": 11, "end": 19, "score": 0.8}

    class WordPairPipeline:
        """What the page reads of a word-pair checkpoint's pipeline (training one here would be slow)."""

        def resolve_context(self, context, image, image_id):
            return None, "none"

        @staticmethod
        def processor(words, context=None, return_overflowing_tokens=False):
            return {"word_offset": [0]}  # the post fits one window

        def __call__(self, text, image=None, context=None):
            couple = {"head": austin, "tail": savannah, "relation": "couple", "score": 0.71234}
            return {"entities": [austin, savannah], "relations": [couple]}

    extractor = app.Extractor(WordPairPipeline())
    highlighted, entities, relations, *_ = extractor.extract("Austin and Savannah spotted together", None, "", None)
    assert highlighted["entities"] == [austin, savannah]
    assert entities.values.tolist() == [["Austin", "PER", 0.9], ["Savannah", "PER", 0.8]]
    assert relations.columns.tolist() == ["head", "relation", "tail", "score"]
    assert relations.values.tolist() == [["Austin", "couple", "Savannah", 0.712]]


def test_space_requirements_cover_the_library():
    """demo/requirements.txt installs a Space: the library's requirements and Gradio."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    library = [line for line in setup["options"]["install_requires"].splitlines() if line.strip()]
    demo_extra = [line for line in setup["options.extras_require"]["demo"].splitlines() if line.strip()]
    lines = (ROOT / "demo" / "requirements.txt").read_text().splitlines()
    space = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert set(library + demo_extra) <= set(space)
