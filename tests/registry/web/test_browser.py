"""End to end in a real headless Chromium against `modelseal serve` on loopback.

Models are pushed with the real client (signed, scanned, SBOM'd by the server's gate);
the browser signs in with a token, browses to a version, sees its signature and
findings, sees a quarantined upload as the namespace admin, downloads an SBOM, and a
user without rights cannot see the private namespace. Screenshots go to
``test-output/screenshots/``. Every page is served (200, a ``Server-Timing`` header, no
server error); page times are measured by ``bench/bench_registry_web.py``, not here.

Skipped when ``/usr/bin/chromium`` is missing, unless ``MODELSEAL_REQUIRE_BROWSER=1``
(CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.registry.conftest import free_port, wait_port
from tests.samples.registry import write_model, write_pickle_model

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output" / "screenshots"
#: Every kind of page of the registry served by ``served``.
LOOPBACK_PAGES = [
    "/",
    "/n/alice",
    "/n/alice/bert",
    "/n/alice/bert/v/1.0",
    "/n/alice/bert/v/latest",
    "/n/alice/bert/v/1.0/sbom",
    "/n/alice/bert/v/1.0/sbom.json",
    "/n/alice/evil/v/1.0",
    "/n/alice/-/quarantine",
    "/n/open",
    "/n/open/demo/v/1.0",
    "/search?q=bert",
    "/login",
    "/log",
    "/log/0",
    "/log/consistency?first=1",
]
_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    if os.environ.get("MODELSEAL_REQUIRE_BROWSER") == "1":
        pytest.fail(
            f"{CHROMIUM} is missing but MODELSEAL_REQUIRE_BROWSER=1: "
            "install it with `apt-get install -y chromium`",
            pytrace=False,
        )
    pytest.skip(
        f"{CHROMIUM} is missing (apt-get install -y chromium); "
        "set MODELSEAL_REQUIRE_BROWSER=1 to make this a failure",
        allow_module_level=True,
    )


@dataclass
class Served:
    """A `modelseal serve` subprocess with pushed models."""

    url: str
    data: Path
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    timings: list[tuple[str, float]] = field(default_factory=list)
    errors: list[tuple[str, int]] = field(default_factory=list)


def _prepare(data: Path, keypair: Any) -> dict[str, str]:
    """Users, namespaces, a trusted key and tokens, written with the registry's own API."""
    from modelseal.registry import identity
    from modelseal.registry.db.session import create_engine_for, migrate, session_factory
    from modelseal.registry.settings import RegistrySettings

    settings = RegistrySettings(data_dir=data)
    migrate(settings.database_url)
    engine = create_engine_for(settings.database_url)
    try:
        with session_factory(engine)() as session:
            alice = identity.create_user(session, "alice", admin=True)
            bob = identity.create_user(session, "bob")
            identity.create_namespace(
                session, "open", public=True, require_signature=False, owner=alice
            )
            identity.trust_key(
                session,
                identity.get_namespace(session, "alice"),
                keypair.public_key.read_text(),
                "release",
            )
            return {
                "alice": identity.create_token(session, alice, actions=("read", "push", "admin"))[
                    1
                ],
                "bob": identity.create_token(session, bob, actions=("read", "push"))[1],
            }
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, keypair: Any) -> Iterator[Served]:
    """The registry served on loopback with signed, derived and quarantined versions."""
    from modelseal.registry.client import ClientState, RegistryClient
    from modelseal.registry.errors import QuarantinedError

    root = tmp_path_factory.mktemp("served")
    data = root / "data"
    tokens = _prepare(data, keypair)
    port = free_port()
    with open(root / "server.log", "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelseal",
                "serve",
                "--data",
                str(data),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}"
        with RegistryClient(url, tokens["alice"], state=ClientState(root / "home")) as client:
            key = keypair.private_key
            client.push(write_model(root / "bert"), "alice/bert:1.0", key=key, tags=["latest"])
            client.push(
                write_model(root / "bert-ft", seed=5),
                "alice/bert-ft:1.0",
                key=key,
                parent="alice/bert:1.0",
            )
            with pytest.raises(QuarantinedError):
                client.push(write_pickle_model(root / "evil"), "alice/evil:1.0", key=key)
            client.push(write_model(root / "demo", seed=9), "open/demo:1.0")
        yield Served(url, data, tokens, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (Debian's, never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=_FLAGS
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    """A fresh browser context (no cookies) whose page responses are timed."""
    context = browser.new_context(
        base_url=served.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)

    def timed(response: Any) -> None:
        header = response.headers.get("server-timing", "")
        found = re.fullmatch(r"app;dur=([0-9.]+)", header)
        if found:
            served.timings.append((response.url, float(found.group(1))))
        if response.status >= 500:
            served.errors.append((response.url, response.status))

    tab.on("response", timed)
    yield tab
    context.close()


def shot(page: Any, name: str) -> None:
    """Save a full-page screenshot for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, token: str) -> None:
    """Sign in through the form, with the keyboard only."""
    page.goto("/")
    page.get_by_role("banner").get_by_role("link", name="Sign in").click()
    page.get_by_label("API token").fill(token)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_sign_in_and_browse_to_a_signed_version(page: Any, served: Served) -> None:
    page.goto("/")
    shot(page, "01-home-anonymous")
    assert page.get_by_role("link", name="open").is_visible()
    assert page.get_by_role("link", name="alice").count() == 0
    sign_in(page, served.tokens["alice"])
    assert page.get_by_text("Signed in as").is_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["modelseal_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert served.tokens["alice"] not in session["value"]
    shot(page, "02-home-signed-in")

    page.get_by_role("link", name="alice", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("alice")
    shot(page, "03-namespace")
    page.get_by_role("link", name="bert", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "alice/bert"
    shot(page, "04-model")
    page.get_by_role("rowheader").get_by_role("link", name="1.0", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "alice/bert:1.0"
    signature = page.locator("section", has=page.locator("#sig-h"))
    assert "Signature verified" in signature.inner_text()
    assert "release" in signature.inner_text()
    scan = page.locator("section", has=page.locator("#scan-h"))
    assert "Scan: clean" in scan.inner_text()
    assert "0 findings" in scan.inner_text()
    lineage = page.locator("section", has=page.locator("#lineage-h"))
    assert lineage.get_by_role("link", name="alice/bert-ft:1.0").is_visible()
    shot(page, "05-version-signed")
    lineage.get_by_role("link", name="alice/bert-ft:1.0").click()
    assert page.get_by_role("heading", level=1).inner_text() == "alice/bert-ft:1.0"
    assert page.get_by_role("link", name="alice/bert:1.0").is_visible()


def test_admin_sees_the_quarantined_upload_and_its_findings(page: Any, served: Served) -> None:
    sign_in(page, served.tokens["alice"])
    page.goto("/n/alice")
    page.get_by_role("link", name="Quarantined uploads").click()
    card = page.locator("article", has_text="evil:1.0")
    assert card.is_visible()
    assert "pytorch_model.bin" in card.inner_text()
    assert "critical" in card.inner_text()
    shot(page, "06-quarantine")
    card.get_by_role("link", name="evil:1.0").click()
    assert page.get_by_role("heading", name="Quarantined").is_visible()
    findings = page.locator("table.findings")
    assert findings.get_by_text("critical").first.is_visible()
    assert "os" in findings.inner_text() and "system" in findings.inner_text()
    assert "Scan: malicious" in page.locator("p.badges").inner_text()
    shot(page, "07-version-quarantined")


def test_download_the_sbom(page: Any, served: Served, tmp_path: Path) -> None:
    import httpx

    sign_in(page, served.tokens["alice"])
    page.goto("/n/alice/bert/v/1.0")
    page.get_by_role("link", name="View the SBOM").click()
    assert page.get_by_role("heading", level=1).inner_text() == "SBOM of alice/bert:1.0"
    assert page.get_by_role("rowheader", name="model.safetensors").is_visible()
    shot(page, "08-sbom")
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Download the SBOM")).click()
    download = info.value
    assert download.suggested_filename == "alice-bert-1.0.cdx.json"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    document = json.loads(saved.read_bytes())
    assert document["bomFormat"] == "CycloneDX"
    names = {c["name"] for c in document["components"]}
    assert {"model.safetensors", "config.json"} <= names
    api = httpx.get(
        f"{served.url}/v1/namespaces/alice/models/bert/versions/1.0/sbom",
        headers={"authorization": f"Bearer {served.tokens['alice']}"},
    )
    assert api.content == saved.read_bytes()


def test_a_user_without_rights_cannot_see_the_private_namespace(page: Any, served: Served) -> None:
    sign_in(page, served.tokens["bob"])
    assert page.get_by_text("Signed in as").is_visible()
    assert page.get_by_role("link", name="open").is_visible()
    assert page.get_by_role("link", name="alice", exact=True).count() == 0
    for path in ("/n/alice", "/n/alice/bert/v/1.0", "/n/alice/-/quarantine"):
        response = page.goto(path)
        assert response is not None and response.status == 404
        assert page.get_by_role("heading", level=1).inner_text() == "Not found"
        assert "bert" not in page.locator("main").inner_text()
    shot(page, "09-not-found-for-bob")
    page.goto("/search?q=bert")
    assert "0 models matching" in page.locator("main").inner_text()


def test_keyboard_navigation_and_sign_out(page: Any, served: Served) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.goto("/login")
    shot(page, "10-login")
    assert page.evaluate("document.activeElement.id") == "token"  # focused on arrival
    page.keyboard.type("msk_wrong")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("alert").inner_text() == "That token is unknown, expired or revoked."
    sign_in(page, served.tokens["alice"])
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("banner").get_by_role("link", name="Sign in").is_visible()
    response = page.goto("/n/alice")
    assert response is not None and response.status == 401
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in needed"


def test_transparency_log_pages_show_entries_and_verified_proofs(page: Any, served: Served) -> None:
    sign_in(page, served.tokens["alice"])
    page.goto("/n/alice/bert/v/1.0")
    log_section = page.locator("section", has=page.locator("#log-h"))
    log_section.get_by_role("link", name=re.compile(r"log entry \d+")).click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Log entry")
    assert page.get_by_role("link", name="alice/bert:1.0").is_visible()
    proof = page.locator("section", has=page.locator("#proof-h"))
    assert "Verified" in proof.inner_text()
    shot(page, "12-log-entry")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Transparency log").click()
    entries = page.locator("section", has=page.locator("#entries-h"))
    assert entries.get_by_role("link", name="alice/evil:1.0").is_visible()
    assert "Quarantined" in entries.inner_text()
    shot(page, "11-log")
    page.get_by_label("Prove that size").fill("1")
    page.get_by_role("button", name="Show the consistency proof").click()
    page.wait_for_url(re.compile(r"/log/consistency"))
    assert "Verified" in page.locator("main").inner_text()
    shot(page, "13-log-consistency")


def test_every_page_is_served_on_loopback(page: Any, served: Served) -> None:
    import httpx

    sign_in(page, served.tokens["alice"])
    cookie = next(c for c in page.context.cookies() if c["name"] == "modelseal_session")
    headers = {"cookie": f"modelseal_session={cookie['value']}"}
    with httpx.Client(base_url=served.url, headers=headers, timeout=60) as http:
        for path in LOOPBACK_PAGES:
            response = http.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert re.fullmatch(r"app;dur=[0-9.]+", response.headers["server-timing"]), path
    # every response the browser got in the other tests (first visits included) was timed by
    # the server and none was a server error
    assert served.timings
    assert not served.errors, served.errors
