"""The web page in a real browser: Debian's chromium driven by playwright (launched with ``executable_path``).

Keyboard only, at phone width: enter the key, ask, see a cited answer with support marks, follow a citation;
the emergency banner; an abstention with the closest sources; an index document carrying ``<script>`` and
``onerror=`` rendered as text. The browser reaches nothing but the test server (other requests are stubbed).
"""
# ruff: noqa: F811  (the fixtures imported from test_server are the parameters of the tests here)
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

from medrag.server.app import ServerConfig, create_app
from medrag.server.testing import ServerThread
from tests.test_server import QUESTION, XSS_PMID, XSS_QUESTION, keys, served_index, served_rag  # noqa: F401 (fixtures)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EMERGENCY = "I have crushing chest pain and my left arm is numb right now"
PHONE = {"width": 360, "height": 740}

if not Path(CHROMIUM).exists():
    if os.environ.get("MEDRAG_REQUIRE_BROWSER"):
        raise RuntimeError(f"no chromium at {CHROMIUM}: apt-get install -y chromium")
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def site(served_index: Path, served_rag: Any, keys: tuple[Path, str]) -> Iterator[dict[str, Any]]:
    app = create_app(ServerConfig(index=served_index, keys=keys[0], rate_limit=0, reload_interval=0),
                     rag=served_rag)
    with ServerThread(app) as url:
        yield {"url": url, "key": keys[1]}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:
    """A phone-width tab that can reach the test server only (PubMed and other sites answer with a stub)."""
    context = browser.new_context(viewport=PHONE)
    outside: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith(site["url"]):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.fulfill(status=200, content_type="text/html", body="<title>stub</title>outside the test")

    context.route("**/*", guard)
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.on("console", lambda msg: tab.errors.append(msg.text)  # CSP violations included; the 401s asking for a key not
           if msg.type == "error" and "status of 401" not in msg.text else None)
    tab.outside = outside
    tab.goto(site["url"] + "/")
    yield tab
    context.close()


def enter_key(page: Any, key: str, accepted: bool = True) -> None:
    """Type the key into the key form with the keyboard only."""
    sync_api.expect(page.locator("#key-section")).to_be_visible()
    sync_api.expect(page.locator("#key-input")).to_be_focused()
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    if not accepted:
        sync_api.expect(page.locator("#key-error")).to_have_text("That key was not accepted.")
        return
    sync_api.expect(page.locator("#key-section")).to_be_hidden()
    sync_api.expect(page.locator("#question")).to_be_focused()


def ask(page: Any, question: str) -> None:
    page.evaluate("""() => { window.__progressShown = false;
        new MutationObserver(() => { if (!document.getElementById('progress').hidden) window.__progressShown = true; })
          .observe(document.getElementById('progress'), {attributes: true}); }""")
    page.locator("#question").fill("")
    page.locator("#question").focus()
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#answer")).to_be_visible(timeout=60_000)
    assert page.evaluate("window.__progressShown") is True
    sync_api.expect(page.locator("#progress")).to_be_hidden()


def test_keyboard_only_at_phone_width_cited_answer_and_citation_link(page: Any, site: dict[str, Any],
                                                                     served_rag: Any) -> None:
    sync_api.expect(page.locator("footer")).to_contain_text("not medical advice")
    enter_key(page, "mrg_wrong-key", accepted=False)  # asked again, the focus back in the key box
    enter_key(page, site["key"])
    ask(page, QUESTION)
    expected = served_rag.ask(QUESTION)
    sync_api.expect(page.locator("#answer")).to_be_focused()
    links = page.locator("#answer-body a.cite")
    assert links.count() >= len(expected.citations) >= 1
    first = expected.citations[0]
    assert links.first.inner_text() == f"[{first.n}]"
    assert links.first.get_attribute("href") == first.url and first.url.startswith(("https://", "http://"))
    assert links.first.get_attribute("rel") == "noopener noreferrer"
    assert page.locator("#answer-body .support").count() == len(expected.sentences)
    # the answer's lines and list items as the body lays them out; sources numbered 1, 2, ... as cited
    assert page.locator("#answer-body li").count() == sum(s.layout == "item" for s in expected.sentences)
    assert page.locator("#answer-body p").count() == sum(s.layout == "line" for s in expected.sentences)
    assert page.locator("#sources li").count() == len(expected.citations)
    assert [c.n for c in expected.citations] == list(range(1, len(expected.citations) + 1))
    sync_api.expect(page.locator("#answer-disclaimer")).to_contain_text("not medical advice")
    sync_api.expect(page.locator("#emergency")).to_be_hidden()
    # the page fits a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # follow the citation with the keyboard: Tab from the answer reaches the first [n] link; Enter opens it
    page.locator("#answer").focus()
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('cite')"):
            break
    assert page.evaluate("document.activeElement.getAttribute('href')") == first.url
    with page.context.expect_page() as opened:
        page.keyboard.press("Enter")
    opened.value.wait_for_load_state()
    assert opened.value.url == first.url and first.url in page.outside  # stubbed: no traffic left the machine
    # the key is kept for this browser session: a reload does not ask again
    page.reload()
    sync_api.expect(page.locator("#key-section")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('medrag-api-key')") == site["key"]
    assert page.errors == []


def test_emergency_banner_comes_first(page: Any, site: dict[str, Any]) -> None:
    enter_key(page, site["key"])
    ask(page, EMERGENCY)
    banner = page.locator("#emergency")
    sync_api.expect(banner).to_be_visible()
    sync_api.expect(banner).to_be_focused()
    assert "emergency number" in banner.inner_text()
    assert banner.get_attribute("role") == "alert"
    first_in_main = page.evaluate("document.querySelector('main').firstElementChild.id")
    assert first_in_main == "emergency"
    top = page.evaluate("document.getElementById('emergency').getBoundingClientRect().top")
    assert 0 <= top < PHONE["height"] / 3  # on screen, near the top


def test_abstention_is_shown_with_the_closest_sources(page: Any, site: dict[str, Any]) -> None:
    enter_key(page, site["key"])
    ask(page, "How do I adjust the gears on a racing bicycle?")
    box = page.locator("#abstained")
    sync_api.expect(box).to_be_visible()
    sync_api.expect(box).to_contain_text("No answer")
    assert box.locator("li").count() >= 1
    assert page.locator("#answer-body a.cite").count() == 0


def test_markup_from_the_index_renders_as_text(page: Any, site: dict[str, Any]) -> None:
    enter_key(page, site["key"])
    ask(page, XSS_QUESTION)
    answer = page.locator("#answer")
    sync_api.expect(answer).to_contain_text("<script>window.__xss=1</script>")
    sync_api.expect(answer).to_contain_text('<img src=x onerror="window.__xss=2">')
    assert page.locator("#answer script, #answer img, #sources img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    source = page.locator("#sources li").filter(has_text="Quokka fever")
    assert source.locator("a").first.get_attribute("href") == f"https://pubmed.ncbi.nlm.nih.gov/{XSS_PMID}/"
    sync_api.expect(source).to_contain_text('Quokka fever <img src=x onerror="window.__xss=4">')
    hrefs = page.evaluate("[...document.querySelectorAll('#answer a')].map(a => a.getAttribute('href'))")
    assert hrefs and not any(h.startswith("javascript:") for h in hrefs)
    assert page.errors == []
