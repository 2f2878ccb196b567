"""The Gradio demo page (demo/app.py): served on loopback from a subprocess with the session's demo
checkpoint (conftest.py), driven in headless Chromium, and called through its API."""

from __future__ import annotations

import configparser
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import ROOT, load_script

if not os.environ.get("CI"):  # CI installs the demo extra: a missing Gradio must fail there
    pytest.importorskip("gradio", reason='the demo app needs Gradio: pip install -e ".[demo]"')

import numpy as np
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw
from transformers import pipeline

import processing  # noqa: F401  (registers the tasks)

APP = ROOT / "demo" / "app.py"
POST = "so proud of Jordan right now"
STORED_CONTEXT = "a portrait of a man with short hair"
# The server's limits, low enough that the tests stay quick (the defaults are tested on the parser).
LIMITS = {"max_post_words": 50, "max_post_characters": 1000, "max_context_characters": 300, "max_upload_size": "1mb"}
REFUSED = "The picture was not uploaded to this page"


@pytest.fixture(scope="module")
def app():
    """demo/app.py as a module (demo/ is a Space's folder, not a package)."""
    return load_script("demo/app.py")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A red disc (the demo corpus's picture of a person), a context store that knows it by its
    file name, a file that is not an image, a named pipe and a picture over the server's upload limit."""
    folder = tmp_path_factory.mktemp("demo-files")
    disc = Image.new("RGB", (64, 64), (200, 200, 200))
    ImageDraw.Draw(disc).ellipse((20, 20, 44, 44), fill=(220, 50, 60))
    disc.save(folder / "disc.png")
    record = {"image_id": "disc.png", "context": STORED_CONTEXT, "generator": "test", "source": "hand"}
    (folder / "contexts.jsonl").write_text(json.dumps(record) + "\n")
    (folder / "notes.png").write_text("not a picture")
    os.mkfifo(folder / "pipe.png")
    noise = np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)  # about 1.9 MB as a PNG
    Image.fromarray(noise).save(folder / "big.png")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(ner_checkpoint, files):
    """The app, started as the README says, on 127.0.0.1 and a free port; stopped at the end."""
    url = f"http://127.0.0.1:{free_port()}/"
    log = files / "server.log"
    # Gradio's upload folder is a folder of its own, apart from the test files.
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(files / "uploads"))  # fmt: skip
    command = [sys.executable, str(APP), "--model", str(ner_checkpoint), "--context_store", str(files / "contexts.jsonl"),
               "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1].strip("/")]  # fmt: skip
    command += [argument for name, value in LIMITS.items() for argument in (f"--{name}", str(value))]
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
def nlp(ner_checkpoint, files):
    return pipeline("multimodal-ner", model=str(ner_checkpoint), context_store=str(files / "contexts.jsonl"))


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


def within(seconds: float, function, *args):
    """``function(*args)`` on a thread of its own; the test fails if it has not ended within
    ``seconds`` (the thread is left behind: a hung server cannot hang the suite)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except Exception as error:  # noqa: BLE001  (raised again on the test's thread)
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"no answer within {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def call(server: str, endpoint: str, data: list) -> tuple[str, object]:
    """A request to /gradio_api/call/<endpoint> sent as any HTTP client can send it, without
    gradio_client: ``("complete", the outputs)`` or ``("error", the message shown)``."""
    request = urllib.request.Request(
        f"{server}gradio_api/call/{endpoint}",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{server}gradio_api/call/{endpoint}/{event_id}") as response:
        stream = response.read().decode()
    event = None
    for line in stream.splitlines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event in ("complete", "error"):
            data = json.loads(line.removeprefix("data: "))
            return event, (data.get("error") if event == "error" and isinstance(data, dict) else data)
    raise AssertionError(f"no outcome in the answer: {stream!r}")


UPLOADS = itertools.count()


def uploaded(folder: Path, picture: Path, name: str | None = None) -> dict:
    """Gradio's record of an upload of ``picture``: a copy in a folder of its own in ``folder``, which
    stands for the upload folder (the page deletes an upload once a post has been read with it)."""
    copy = folder / f"upload-{next(UPLOADS)}" / picture.name
    copy.parent.mkdir(parents=True)
    shutil.copyfile(picture, copy)
    return {"path": str(copy), "orig_name": name or picture.name}


class FakePipeline:
    """What the page reads of a pipeline, with outputs known to check the page by: `resolve_context`,
    the processor's ``max_length`` and the pipeline's steps for one post (``preprocess`` gives its
    windows, one here, ``forward`` reads each, ``postprocess`` gives `answer`'s result). ``read``
    lists the posts that reached the model."""

    processor = SimpleNamespace(max_length=24)

    def __init__(self):
        self.read = []

    def resolve_context(self, context, image, image_id):
        return None, "none"

    def preprocess(self, example):
        yield {"example": example}  # the post fits one window

    def forward(self, window):
        self.read.append(window["example"]["text"])
        return window

    def postprocess(self, windows):
        return self.answer(windows[0]["example"])

    def answer(self, example):
        return []


def release(pipe: Path) -> None:
    """Opens the named pipe for writing and closes it: a reader stuck on it (as the app was before
    it refused pipes) gets the end of the file, so the server can stop."""
    try:
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # nobody is reading it
        pass


@pytest.mark.slow
def test_page_in_a_browser(server, files, nlp):
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    expected = nlp(POST, image=str(files / "disc.png"))  # the store gives the context, by the file name
    assert "Jordan" in [entity["word"] for entity in expected], "the demo checkpoint finds the name"

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


def test_context_box_follows_the_uploaded_picture(app, nlp, files, tmp_path):
    extractor = app.Extractor(nlp, picture_folders=[tmp_path])  # tmp_path stands for the upload folder
    disc = files / "disc.png"
    stored = uploaded(tmp_path, disc)  # Gradio's record of an upload
    unknown = uploaded(tmp_path, disc, "photo.png")
    context, suggestion = extractor.suggest_context(stored, "", None)
    assert context == STORED_CONTEXT and suggestion == {"context": STORED_CONTEXT, "source": "store"}
    assert extractor.suggest_context(unknown, STORED_CONTEXT, suggestion) == ("", None)  # not this picture's
    assert extractor.suggest_context(unknown, "a man", suggestion) == ("a man", None)  # typed by the visitor

    *_, used, source = extractor.extract(POST, stored, STORED_CONTEXT, suggestion)
    assert (used, source) == (STORED_CONTEXT, "store")
    *_, used, source = extractor.extract(POST, uploaded(tmp_path, disc), "a man on a stage", suggestion)
    assert (used, source) == ("a man on a stage", "given")
    *_, used, source = extractor.extract(POST, unknown, "", None)
    assert (used, source) == ("", "none")


def test_api_opens_no_server_file_it_was_not_sent(server, files):
    """The picture's record names a path, and a client can name any. A bare path (without Gradio's
    file marker, which Gradio checks) outside Gradio's upload folder is refused, whether or not it
    exists and whether or not it is a picture, and so is a link in the upload folder that leads out
    of it; in both events that read a picture. A path with the marker outside the upload folder is
    refused by Gradio itself (it was before the fix as well)."""
    secret = files / "secret.png"
    Image.new("RGB", (32, 32), (10, 120, 10)).save(secret)
    (files / "uploads").mkdir(exist_ok=True)
    link = files / "uploads" / "link.png"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    paths = [secret, files / "missing.png", files / "notes.png", files / "uploads" / ".." / "secret.png", link]
    answers = [within(60, call, server, "extract", [POST, {"path": str(path)}, ""]) for path in paths]
    answers.append(within(60, call, server, "suggest_context", [{"path": str(secret)}, ""]))
    assert {event for event, _ in answers} == {"error"}, answers
    messages = {message for _, message in answers}
    assert len(messages) == 1 and messages.pop().startswith(REFUSED), "the same refusal, existing or not"

    marked = {"path": str(secret), "orig_name": "secret.png", "meta": {"_type": "gradio.FileData"}}
    event, _ = within(60, call, server, "extract", [POST, marked, ""])
    assert event == "error"


def test_api_refuses_a_named_pipe_at_once_and_serves_the_next_request(server, files):
    pipe = files / "pipe.png"
    try:
        event, message = within(20, call, server, "extract", [POST, {"path": str(pipe)}, ""])
        assert event == "error" and message.startswith(REFUSED)
        event, outputs = within(60, call, server, "extract", [POST, None, "a portrait of a man"])
        assert event == "complete" and outputs[3:] == ["a portrait of a man", "given"]
    finally:
        release(pipe)


def test_picture_is_read_only_from_a_regular_file_within_the_size_limit(app, nlp, files, tmp_path):
    """What the page opens, at the level of the Extractor: a pipe in a picture folder is refused at
    once (opening it would wait for a writer), so is a file over the upload limit (one that came
    into the upload folder some other way than an upload), and anything outside the picture folders."""
    extractor = app.Extractor(nlp, app.Limits(max_upload_size=1024**2), picture_folders=[files, tmp_path])
    try:
        with pytest.raises(app.gr.Error, match="The picture 'pipe.png' is not a file"):
            within(10, extractor.extract, POST, {"path": str(files / "pipe.png"), "orig_name": "pipe.png"}, "", None)
    finally:
        release(files / "pipe.png")
    big = {"path": str(files / "big.png"), "orig_name": "big.png"}
    with pytest.raises(
        app.gr.Error, match=r"'big.png' is larger than the limit of 1 MB \(--max_upload_size\): it has 1\.\d MB"
    ):
        extractor.extract(POST, big, "", None)
    *_, used, source = extractor.extract(POST, uploaded(tmp_path, files / "disc.png"), "", None)
    assert (used, source) == (STORED_CONTEXT, "store")

    uploads_only = app.Extractor(nlp)  # by default, only Gradio's upload folder
    with pytest.raises(app.gr.Error, match=REFUSED):
        uploads_only.extract(POST, {"path": str(files / "disc.png")}, "", None)
    examples = app.Extractor(nlp, example_pictures=[files / "disc.png"])  # and the examples' pictures
    *_, source = examples.extract(POST, {"path": str(files / "disc.png")}, "", None)
    assert source == "store"


def test_api_refuses_posts_and_contexts_over_the_limits(server):
    client = Client(server, verbose=False)
    for post, context, message in (
        (" ".join(["word"] * 51), "", r"The post has 51 words, over the limit of 50 \(--max_post_words\)"),
        ("x" * 1001, "", r"The post has 1001 characters, over the limit of 1000 \(--max_post_characters\)"),
        (POST, "a" * 301, r"The context has 301 characters, over the limit of 300 \(--max_context_characters\)"),
    ):
        with pytest.raises(AppError, match=message):
            client.predict(post, None, context, api_name="/extract")
    *_, used, source = client.predict(" ".join(["word"] * 50), None, "a" * 300, api_name="/extract")  # at the limits
    assert (used, source) == ("a" * 300, "given")


def test_api_refuses_an_upload_over_the_size_limit(server, files):
    import httpx

    assert (files / "big.png").stat().st_size > 1024**2
    with open(files / "big.png", "rb") as picture:
        answer = httpx.post(
            f"{server}gradio_api/upload", files={"files": ("big.png", picture, "image/png")}, timeout=60
        )
    assert answer.status_code == 413 and "maximum allowed size of 1048576 bytes" in answer.text
    # gradio_client checks the server's limit before it sends the file (older clients let the server refuse it).
    with pytest.raises(Exception, match=r"maximum (allowed |file )?size of 1048576 bytes"):
        Client(server, verbose=False).predict(POST, handle_file(str(files / "big.png")), "", api_name="/extract")


def test_a_request_past_the_time_limit_is_answered_with_an_error(app):
    finish = threading.Event()

    class SlowPipeline(FakePipeline):
        """A pipeline that takes 30 s (or until the test ends)."""

        def answer(self, example):
            finish.wait(30)
            return []

    extractor = app.Extractor(SlowPipeline(), app.Limits(time_limit=0.5))
    try:
        start = time.monotonic()
        with pytest.raises(app.gr.Error, match=r"took longer than the limit of 0.5 s \(--time_limit\)"):
            within(10, extractor.extract, POST, None, "", None)
        assert time.monotonic() - start < 5
    finally:
        finish.set()


def test_a_request_past_the_time_limit_hands_on_its_place(app):
    """With one place (--concurrency 1), a request stuck past the time limit no longer keeps the next
    one waiting: the next one is read at once, and the stuck one stops at its next step, before the
    model. Past as many stuck requests as places, a request waits for one of them to end."""
    finish = threading.Event()

    class StuckPipeline(FakePipeline):
        """Finding the context of a post sent without one takes until the test says."""

        def resolve_context(self, context, image, image_id):
            finish.wait(30)
            return None, "none"

    nlp = StuckPipeline()
    extractor = app.Extractor(nlp, app.Limits(time_limit=0.5, concurrency=1))
    try:
        with pytest.raises(app.gr.Error, match="took longer than the limit of 0.5 s"):
            within(10, extractor.extract, "the stuck post", None, "", None)
        *_, used, source = within(10, extractor.extract, POST, None, "a man on a stage", None)
        assert (used, source) == ("a man on a stage", "given") and nlp.read == [POST]

        with pytest.raises(app.gr.Error, match="took longer than the limit"):
            within(10, extractor.extract, "another stuck post", None, "", None)
        start = time.monotonic()
        with pytest.raises(app.gr.Error, match="took longer than the limit"):  # two stuck threads: no thread left
            within(10, extractor.extract, POST, None, "a man on a stage", None)
        assert time.monotonic() - start < 5
    finally:
        finish.set()
    for _ in range(2):  # both places for threads come back: the stuck threads have ended
        assert extractor.threads.acquire(timeout=10)
    for _ in range(2):
        extractor.threads.release()
    *_, used, _ = within(10, extractor.extract, POST, None, "a man on a stage", None)
    assert used == "a man on a stage"
    assert nlp.read == [POST, POST], "the given-up posts stopped before the model"


def test_an_upload_is_deleted_once_a_post_is_read_with_it(app, files, tmp_path):
    """The page kept every upload (the upload folder grew by each picture). Now the upload is
    deleted, with Gradio's folder of it, once a post has been read with it; the context suggested on
    upload leaves it for the post, a post refused for its text leaves it for the next try, and the
    example pictures (outside the upload folder, or copied into it) stay."""
    uploads, examples = tmp_path / "uploads", tmp_path / "examples"
    examples.mkdir()
    example, copy = examples / "example.png", uploads / "copy-of-example" / "example.png"
    copy.parent.mkdir(parents=True)
    for path in (example, copy):
        shutil.copyfile(files / "disc.png", path)
    extractor = app.Extractor(FakePipeline(), picture_folders=[uploads], example_pictures=[example])
    extractor.keep([copy])

    upload = uploaded(uploads, files / "disc.png")
    extractor.suggest_context(upload, "", None)
    with pytest.raises(app.gr.Error, match="The post is empty"):
        extractor.extract("  ", upload, "", None)
    assert Path(upload["path"]).exists()
    *_, source = extractor.extract(POST, upload, "", None)
    assert source == "none" and not Path(upload["path"]).parent.exists()
    with pytest.raises(app.gr.Error, match="The picture 'disc.png' could not be opened: upload it again"):
        extractor.extract(POST, upload, "", None)

    for picture in (example, copy):
        extractor.extract(POST, {"path": str(picture)}, "", None)
        assert picture.exists()
    assert [path.name for path in uploads.iterdir()] == ["copy-of-example"]


def test_a_thin_strip_is_refused_with_its_size_and_the_limit(app, tmp_path):
    strip = tmp_path / "strip.png"
    Image.new("L", (1, 400_000)).save(strip)  # 1 KB
    extractor = app.Extractor(FakePipeline(), picture_folders=[tmp_path])
    with pytest.raises(
        app.gr.Error,
        match=r"The picture 'strip.png' cannot be read: it is 1 x 400000 pixels, an aspect ratio of 400000:1, "
        r"over the limit of 50:1 .* it would be 224 x 89600000 pixels",
    ):
        extractor.extract(POST, uploaded(tmp_path, strip), "", None)


def rss() -> int:
    """The memory this process holds (its resident set), in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the memory from Linux's /proc")
def test_the_memory_of_a_large_picture_is_given_back_after_the_answer(app, tmp_path):
    """A 4000 x 3000 picture of one colour: 60 KB as a PNG, 36 MB decoded. The server kept that
    memory after the answer (the C allocator keeps what a thread freed); now it is given back."""
    if getattr(app.LIBC, "malloc_trim", None) is None:
        pytest.skip("the C library has no malloc_trim (not glibc): its allocator may keep the memory")
    Image.new("RGB", (4000, 3000), (200, 30, 30)).save(tmp_path / "large.png")
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "small.png")
    extractor = app.Extractor(FakePipeline(), picture_folders=[tmp_path])
    extractor.extract(POST, uploaded(tmp_path, tmp_path / "small.png"), "a red picture", None)  # the code's first run
    # A server that has run a while: glibc then serves blocks of a picture's size from memory it keeps
    # (freeing a large block raises the size below which it keeps freed memory).
    np.ones(20 * 1024**2, dtype=np.uint8)
    before = rss()
    extractor.extract(POST, uploaded(tmp_path, tmp_path / "large.png"), "a red picture", None)
    assert rss() - before < 16 * 1024**2


def test_limits_are_flags_with_defaults_listed_in_the_readme(app, nlp):
    parser = app.build_parser()
    assert app.limits_of(parser.parse_args([])) == app.Limits()
    given = parser.parse_args(
        ["--max_post_words", "20", "--max_upload_size", "512kb", "--time_limit", "5", "--concurrency", "3"]
    )
    assert app.limits_of(given) == app.Limits(
        max_post_words=20, max_upload_size=512 * 1024, time_limit=5.0, concurrency=3
    )

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Trying it in a browser", 1)[1].split("\n### ", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| `--")}
    for name in app.Limits._fields:
        default = parser.get_default(name)
        shown = default if isinstance(default, str) else f"{default:g}"
        assert f"| {shown} |" in rows[f"`--{name}`"], f"--{name} and its default {shown} in the README's table"

    page = app.build_page(nlp, "tiny", [], app.Limits(concurrency=3, queue_size=7))
    extract = next(fn for fn in page.fns.values() if fn.api_name == "extract")
    assert extract.concurrency_limit == 3 and page._queue.max_size == 7  # Gradio's own attributes


def test_page_shows_the_limits_in_a_browser(server, files):
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium()
    try:
        wait = WebDriverWait(browser, 120, ignored_exceptions=(StaleElementReferenceException,))
        browser.get(server)
        post = wait.until(lambda page: page.find_element(By.CSS_SELECTOR, "#post textarea"))
        post.send_keys(" ".join(["word"] * 51))
        browser.find_element(By.ID, "extract").click()
        shown = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
        try:
            shown.until(lambda page: any("51 words, over the limit of 50" in text for text in messages(page)))
        except TimeoutException:
            pytest.fail(f"no message for the long post; the page shows {messages(browser)}")
        browser.find_element(By.CSS_SELECTOR, "#picture input[type=file]").send_keys(str(files / "big.png"))
        try:
            shown.until(lambda page: any("maximum allowed size" in text for text in messages(page)))
        except TimeoutException:
            pytest.fail(f"no message for the large picture; the page shows {messages(browser)}")
    finally:
        browser.quit()


class CountingProcessor:
    """A processor that counts its calls (anything else goes to the processor)."""

    def __init__(self, processor):
        self.processor, self.calls = processor, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.processor(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.processor, name)


def test_long_post_is_read_in_windows_with_a_warning(app, nlp, monkeypatch):
    """The number of windows comes from the processor's one run for the model: it no longer runs
    once more only to count them (issue 27)."""
    extractor = app.Extractor(nlp)
    words = " ".join(["so proud of Jordan ,"] * 20)
    expected = [nlp(text, context="a portrait of a man") for text in (words, POST)]
    processor = CountingProcessor(nlp.processor)
    monkeypatch.setattr(nlp, "processor", processor)
    with pytest.warns(UserWarning, match=r"read in \d+ overlapping windows"):  # a toast in the page
        highlighted, *_ = extractor.extract(words, None, "a portrait of a man", None)
    assert highlighted["entities"] == expected[0] and processor.calls == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one window: no warning
        highlighted, *_ = extractor.extract(POST, None, "a portrait of a man", None)
    assert highlighted["entities"] == expected[1] and processor.calls == 2


def test_relations_of_a_word_pair_checkpoint_fill_their_table(app):
    austin = {"entity_group": "PER", "word": "Austin", "start": 0, "end": 6, "score": 0.9}
    savannah = {"entity_group": "PER", "word": "Savannah", "start": 11, "end": 19, "score": 0.8}

    class WordPairPipeline(FakePipeline):
        """A word-pair checkpoint's pipeline, with known outputs to check the table by."""

        def answer(self, example):
            couple = {"head": austin, "tail": savannah, "relation": "couple", "score": 0.71234}
            return {"entities": [austin, savannah], "relations": [couple]}

    extractor = app.Extractor(WordPairPipeline())
    highlighted, entities, relations, *_ = extractor.extract("Austin and Savannah spotted together", None, "", None)
    assert highlighted["entities"] == [austin, savannah]
    assert entities.values.tolist() == [["Austin", "PER", 0.9], ["Savannah", "PER", 0.8]]
    assert relations.columns.tolist() == ["head", "relation", "tail", "score"]
    assert relations.values.tolist() == [["Austin", "couple", "Savannah", 0.712]]


def test_a_word_pair_checkpoint_fills_both_tables(app, pair_checkpoint):
    nlp = pipeline("multimodal-relation-extraction", model=str(pair_checkpoint))
    post = "Austin and Eden spotted together at the party"
    highlighted, entities, relations, *_ = app.Extractor(nlp).extract(post, None, "two people at a wedding", None)
    expected = nlp(post, context="two people at a wedding")
    assert highlighted["entities"] == expected["entities"]
    assert entities.values.tolist() == [
        [e["word"], e["entity_group"], round(e["score"], 3)] for e in expected["entities"]
    ]
    assert relations.values.tolist() == [
        [r["head"]["word"], r["relation"], r["tail"]["word"], round(r["score"], 3)] for r in expected["relations"]
    ]
    assert relations.columns.tolist() == ["head", "relation", "tail", "score"]


def test_space_requirements_cover_the_library():
    """demo/requirements.txt installs a Space: the library's requirements and Gradio."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    library = [line for line in setup["options"]["install_requires"].splitlines() if line.strip()]
    demo_extra = [line for line in setup["options.extras_require"]["demo"].splitlines() if line.strip()]
    lines = (ROOT / "demo" / "requirements.txt").read_text().splitlines()
    space = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert set(library + demo_extra) <= set(space)
