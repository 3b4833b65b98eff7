"""The web pages rendered through FastAPI's TestClient on seeded registry data."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.registry.web.conftest import WebApp, csrf_of, login, server_ms
from tests.samples.registry_web import XSS

#: (user or None for anonymous, path) of every kind of page.
PAGES = [
    (None, "/"),
    (None, "/n/open"),
    (None, "/n/open?after=30"),
    (None, "/n/open/llama/v/1.0"),
    (None, "/search?q=bulk"),
    (None, "/login"),
    ("alice", "/"),
    ("alice", "/n/acme"),
    ("alice", "/n/acme/bert"),
    ("alice", "/n/acme/bert/v/1.0"),
    ("alice", "/n/acme/bert/v/latest"),
    ("alice", "/n/acme/many"),
    ("alice", "/n/acme/many/v/0.79"),
    ("alice", "/n/acme/evil/v/0.1"),
    ("alice", "/n/acme/-/quarantine"),
    ("alice", "/n/acme/bert/v/1.0/sbom"),
    ("bob", "/n/acme/-/quarantine"),
    ("dave", "/n/acme/evil/v/0.1"),
    (None, "/log"),
    (None, "/log/consistency?first=3"),
    ("alice", "/log"),
    ("alice", "/log/0"),
    ("carol", "/log"),
]


class _Page(HTMLParser):
    """Collects what the accessibility checks look at."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[int] = []
        self.label_for: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append((tag, values))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "label" and values.get("for"):
            self.label_for.add(str(values["for"]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_accessible(html: str) -> _Page:
    """Structural accessibility checks every page must pass."""
    page = _Page()
    page.feed(html)
    tags = [t for t, _ in page.tags]
    html_tag = next(a for t, a in page.tags if t == "html")
    assert html_tag.get("lang") == "en"
    assert "title" in tags and "main" in tags
    assert page.headings.count(1) == 1, "exactly one h1"
    for before, after in zip(page.headings, page.headings[1:], strict=False):
        assert after <= before + 1, f"heading level jumps from h{before} to h{after}"
    for tag, attrs in page.tags:
        if tag == "input" and attrs.get("type") != "hidden":
            assert attrs.get("id") in page.label_for, f"input {attrs} has no label"
        if tag == "img":
            assert "alt" in attrs
        if tag == "th" and attrs.get("scope") is None:
            raise AssertionError(f"table header without scope: {attrs}")
    assert "script" not in tags, "pages need no JavaScript"
    first_link = next(a for t, a in page.tags if t == "a")
    assert first_link.get("href") == "#main", "the first link skips to the content"
    return page


def get_as(web: WebApp, user: str | None, path: str) -> Any:
    client = web.signed_in(user) if user else web.client()
    return client.get(path)


@pytest.mark.parametrize(("user", "path"), PAGES)
def test_every_page_renders_accessible_html(web: WebApp, user: str | None, path: str) -> None:
    # page times are measured by bench/bench_registry_web.py: no test asserts a wall-clock time
    response = get_as(web, user, path)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert server_ms(response) >= 0  # the server timed it (Server-Timing header present)
    check_accessible(response.text)
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_anonymous_visitors_see_public_namespaces_only(web: WebApp) -> None:
    home = web.client().get("/").text
    assert 'href="/n/open"' in home
    assert "acme" not in home and "alice" not in home


@pytest.mark.parametrize("path", ["/n/acme", "/n/acme/bert/v/1.0", "/n/nosuch", "/n/nosuch/x"])
def test_private_or_missing_namespaces_ask_anonymous_visitors_to_sign_in(
    web: WebApp, path: str
) -> None:
    response = web.client().get(path)
    assert response.status_code == 401
    assert "Sign in needed" in response.text
    assert f'href="/login?next={path}"' in response.text
    assert "bert" not in response.text.replace(path, "")


@pytest.mark.parametrize("path", ["/n/acme", "/n/acme/bert", "/n/acme/bert/v/1.0/sbom.json"])
def test_a_signed_in_user_without_rights_cannot_tell_a_private_namespace_exists(
    web: WebApp, path: str
) -> None:
    carol = web.signed_in("carol")
    hidden = carol.get(path)
    missing = carol.get(path.replace("acme", "nosuch"))
    assert hidden.status_code == missing.status_code == 404
    assert "Base model" not in hidden.text
    assert hidden.text.replace("acme", "X") == missing.text.replace("nosuch", "X")
    assert "acme" not in carol.get("/").text
    assert "acme" not in carol.get("/search?q=bert").text


def test_version_page_shows_signer_signature_scan_tags_and_lineage(web: WebApp) -> None:
    alice = web.signed_in("alice")
    html = alice.get("/n/acme/bert/v/1.1").text
    assert "Signature verified" in html
    assert "release" in html and web.data.release_fingerprint in html
    assert "Scan: clean" in html
    assert '<span class="tag">latest</span>' in html
    lineage = html[html.index('id="lineage-h"') :]
    assert '<a href="/n/acme/bert/v/1.0">acme/bert:1.0</a>' in lineage  # base model
    assert '<a href="/n/acme/bert-ft/v/2.0">acme/bert-ft:2.0</a>' in lineage  # derived
    base = alice.get("/n/acme/bert/v/1.0").text
    derived = base[base.index("Derived versions") :]
    # bert-ft 2.0 derives from 1.1, which derives from 1.0: nested under it
    nested = re.search(r'acme/bert:1\.1</a>.*?<ul class="tree">.*?acme/bert-ft:2\.0', derived, re.S)
    assert nested, derived[:2000]
    assert "open/llama:1.0" in derived  # public derivative of a private base


def test_tag_and_digest_urls_resolve_to_the_same_version(web: WebApp) -> None:
    alice = web.signed_in("alice")
    by_tag = alice.get("/n/acme/bert/v/latest").text
    digest = re.search(r"sha256:([0-9a-f]{64})</code>", by_tag)
    assert digest
    by_digest = alice.get(f"/n/acme/bert/v/sha256:{digest.group(1)}").text
    for html in (by_tag, by_digest):
        assert "<h1>acme/bert:1.1</h1>" in html
    assert alice.get("/n/acme/bert/v/9.9").status_code == 404
    assert alice.get("/n/acme/bert/v/..%2F..").status_code in (400, 404)


def test_lineage_hides_a_private_base_model_from_anonymous_visitors(web: WebApp) -> None:
    html = web.client().get("/n/open/llama/v/1.0").text
    lineage = html[html.index('id="lineage-h"') :]
    assert '<span class="mono">acme/bert:1.0</span>' in lineage
    assert "not visible to you" in lineage
    assert 'href="/n/acme' not in html


def test_quarantine_page_shows_every_upload_to_admins_and_own_ones_to_publishers(
    web: WebApp,
) -> None:
    admin = web.signed_in("alice").get("/n/acme/-/quarantine").text
    assert "evil:0.1" in admin and "evil:0.2" in admin
    assert "critical pickle.dangerous-global: imports os.system" in admin
    assert "unsigned: no signature bundle" in admin
    assert "Signature not verified" in admin
    own = web.signed_in("bob").get("/n/acme/-/quarantine").text
    assert "evil:0.1" in own and "evil:0.2" not in own
    assert "Your quarantined uploads" in own
    assert web.signed_in("root").get("/n/acme/-/quarantine").status_code == 200
    reader = web.signed_in("dave").get("/n/acme/-/quarantine")
    assert reader.status_code == 403 and "may not push" in reader.text
    bob_ns = web.signed_in("bob").get("/n/acme").text
    assert "Quarantined uploads</a>: 1 of yours" in bob_ns
    assert "Quarantined uploads" not in web.signed_in("dave").get("/n/acme").text


def test_quarantine_reasons_need_push_rights_on_the_version_page(web: WebApp) -> None:
    bob = web.signed_in("bob").get("/n/acme/evil/v/0.1").text
    assert "imports os.system" in bob and "signature does not verify" in bob
    dave = web.signed_in("dave").get("/n/acme/evil/v/0.1").text
    assert "Quarantined" in dave
    assert "signature does not verify" not in dave
    assert "reasons are shown to publishers" in dave


def test_findings_are_listed_worst_first_with_their_file(web: WebApp) -> None:
    html = web.signed_in("alice").get("/n/acme/evil/v/0.1").text
    table = html[html.index('class="findings"') :]
    critical = table.index("sev-critical")
    medium = table.index("sev-medium")
    assert critical < medium
    assert "pickle.dangerous-global" in table and "pytorch_model.bin" in table
    assert "Scan: malicious" in html
    big = web.signed_in("alice").get("/n/acme/many/v/0.79").text
    assert big.count('class="sev sev-') == 500
    assert "100 more findings are not listed" in big


def test_user_controlled_strings_are_escaped_everywhere(web: WebApp) -> None:
    alice = web.signed_in("alice")
    escaped = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"
    for path in (
        "/n/acme/bert",
        "/n/acme",
        "/n/acme/evil/v/0.1",
        "/n/acme/-/quarantine",
        "/n/acme/evil/v/0.1/sbom",
    ):
        html = alice.get(path).text
        assert XSS not in html, path
        assert escaped in html, path
    search = web.client().get("/search", params={"q": XSS}).text
    assert XSS not in search and "&lt;script&gt;" in search


def test_sbom_page_and_download(web: WebApp) -> None:
    alice = web.signed_in("alice")
    page = alice.get("/n/acme/bert/v/1.0/sbom").text
    assert "CycloneDX 1.6" in page and "model.safetensors" in page
    assert "no README.md model card" in page and "pkg:pypi/safetensors" in page
    download = alice.get("/n/acme/bert/v/1.0/sbom.json")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/vnd.cyclonedx+json"
    assert download.headers["content-disposition"].startswith(
        'attachment; filename="acme-bert-1.0.cdx.json"'
    )
    assert json.loads(download.content)["bomFormat"] == "CycloneDX"
    api = alice.get(
        "/v1/namespaces/acme/models/bert/versions/1.0/sbom",
        headers={"authorization": f"Bearer {web.data.tokens['alice']}"},
    )
    assert api.content == download.content
    assert alice.get("/n/acme/evil/v/0.2/sbom.json").status_code == 200
    no_sbom = web.client().get("/n/open/bulk-000/v/1.0/sbom")
    assert no_sbom.status_code == 404 and "has no SBOM" in no_sbom.text


def test_lists_are_paginated(web: WebApp) -> None:
    client = web.client()
    first = client.get("/n/open").text
    more = re.search(r'href="(/n/open\?after=\d+)" rel="next"', first)
    assert more and first.count('<th scope="row"><a href="/n/open/') == 50
    second = client.get(more.group(1)).text
    assert second.count('<th scope="row"><a href="/n/open/') == 11  # llama + 60 bulk
    alice = web.signed_in("alice")
    versions = alice.get("/n/acme/many").text
    older = re.search(r'href="(/n/acme/many\?before=\d+)" rel="next"', versions)
    assert older and ">0.79</a>" in versions and ">0.0</a>" not in versions
    assert ">0.0</a>" in alice.get(older.group(1)).text


def test_signing_in_sets_a_hardened_cookie_that_holds_no_token(web: WebApp) -> None:
    client = web.client()
    response = login(client, web.data.tokens["alice"], "/n/acme/bert")
    assert response.status_code == 303 and response.headers["location"] == "/n/acme/bert"
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("modelseal_session="))
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
        assert flag.lower() in session.lower()
    secret = web.data.tokens["alice"]
    assert secret not in session and secret[4:20] not in session
    assert "Signed in as <strong>alice</strong>" in client.get("/").text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil"])
def test_sign_in_never_redirects_off_site(web: WebApp, target: str) -> None:
    response = login(web.client(), web.data.tokens["alice"], target)
    assert response.headers["location"] == "/"


def test_form_posts_need_the_csrf_token_and_a_same_origin(web: WebApp) -> None:
    client = web.client()
    token = web.data.tokens["alice"]
    form = client.get("/login")
    missing = client.post("/login", data={"token": token, "csrf": ""})
    assert missing.status_code == 403 and "did not come from this site" in missing.text.lower()
    forged = client.post("/login", data={"token": token, "csrf": "A" * 43})
    assert forged.status_code == 403
    cross = client.post(
        "/login",
        data={"token": token, "csrf": csrf_of(form.text)},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "cross-site" in cross.text.lower()
    assert "modelseal_session" not in client.cookies
    same = client.post(
        "/login",
        data={"token": token, "csrf": csrf_of(client.get("/login").text)},
        headers={"origin": "https://testserver"},
    )
    assert same.status_code == 303
    signed_in = web.signed_in("alice")
    assert signed_in.post("/logout", data={"csrf": "nope"}).status_code == 403
    assert "Signed in as" in signed_in.get("/").text


def test_sign_out_ends_the_session(web: WebApp) -> None:
    client = web.signed_in("alice")
    page = client.get("/n/acme").text
    response = client.post("/logout", data={"csrf": csrf_of(page)})
    assert response.status_code == 303
    assert any(
        c.startswith("modelseal_session=") and "Max-Age=0" in c
        for c in response.headers.get_list("set-cookie")
    )
    assert client.get("/n/acme").status_code == 401


def test_a_bad_token_is_refused_and_recorded(fresh_web: WebApp) -> None:
    from sqlalchemy import select

    from modelseal.registry.db.models import AuthEvent

    client = fresh_web.client()
    response = login(client, "msk_not-a-token")
    assert response.status_code == 401
    assert "unknown, expired or revoked" in response.text
    assert 'aria-invalid="true"' in response.text
    with fresh_web.app.state.sessions() as session:
        kinds = session.scalars(select(AuthEvent.kind)).all()
    assert kinds == ["unauthenticated"]


def test_repeated_bad_sign_ins_are_rate_limited_but_browsing_is_not_counted(
    fresh_web: WebApp,
) -> None:
    client = fresh_web.client()
    for _ in range(12):  # anonymous visits to private pages are no failed sign-ins
        assert client.get("/n/acme").status_code == 401
    assert login(client, fresh_web.data.tokens["alice"]).status_code == 303
    other = fresh_web.client()
    for _ in range(10):
        assert login(other, "msk_wrong").status_code == 401
    limited = login(other, fresh_web.data.tokens["alice"])
    assert limited.status_code == 429 and "too many failed authentications" in limited.text.lower()


def test_revoking_the_token_ends_the_web_session(fresh_web: WebApp) -> None:
    from modelseal.registry import identity

    client = fresh_web.signed_in("alice")
    assert client.get("/n/acme").status_code == 200
    with fresh_web.app.state.sessions() as session:
        token = identity.TokenIdentityProvider().authenticate(
            session, fresh_web.data.tokens["alice"]
        )
        assert token is not None and token.token_id is not None
        identity.revoke_token(session, token.token_id)
    response = client.get("/n/acme")
    assert response.status_code == 401
    cleared = response.headers.get_list("set-cookie")
    assert any(c.startswith("modelseal_session=") and "Max-Age=0" in c for c in cleared)


def test_a_tampered_session_cookie_is_ignored(web: WebApp) -> None:
    import base64

    value = web.signed_in("bob").cookies["modelseal_session"]
    body, mac = value.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["t"] = 1  # root's token id
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    for cookie, status in ((value, 200), (f"{forged}.{mac}", 401), (value[:-2], 401)):
        client = web.client()
        client.cookies.set("modelseal_session", cookie)
        assert client.get("/n/acme").status_code == status


def test_errors_are_html_pages_and_the_api_stays_json(web: WebApp) -> None:
    client = web.client()
    missing = client.get("/n/open/nosuch")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "no model open/nosuch" in missing.text.lower()
    bad = client.get("/n/open/Bad..Name")
    assert bad.status_code == 400 and "invalid model name" in bad.text.lower()
    check_accessible(bad.text)
    api = client.get("/v1/namespaces/acme")
    assert api.status_code == 401 and api.json()["error"]["code"] == "unauthenticated"
    assert client.get("/health").json()["status"] == "ok"
    css = client.get("/static/style.css")
    assert css.headers["content-type"].startswith("text/css") and "--ink" in css.text


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_colour_pairs_meet_wcag_aa_contrast(web: WebApp) -> None:
    css = web.client().get("/static/style.css").text
    colours = dict(re.findall(r"--([a-z-]+): (#[0-9a-f]{6})", css))
    pairs = [("ink", "bg"), ("muted", "bg"), ("muted", "soft"), ("link", "bg"), ("brand", "bg")]
    pairs += [(f"{k}-ink", f"{k}-bg") for k in ("ok", "bad", "warn", "neutral", "private")]
    for fg, bg in pairs:
        light, dark = sorted((_luminance(colours[fg]), _luminance(colours[bg])), reverse=True)
        ratio = (light + 0.05) / (dark + 0.05)
        assert ratio >= 4.5, f"{fg} on {bg}: {ratio:.2f}"


def test_log_page_shows_the_signed_tree_head_to_everyone_and_entries_to_signed_in_users(
    web: WebApp,
) -> None:
    api = web.client().get("/v1/log/tree-head").json()
    anonymous = web.client().get("/log").text
    assert f"{api['tree_size']} entries" in anonymous and api["root_hash"] in anonymous
    assert "BEGIN PUBLIC KEY" in anonymous
    assert "sign in</a> to see" in anonymous
    assert "acme" not in anonymous and "Published</span>" not in anonymous
    alice = web.signed_in("alice")
    assert "Older entries" in alice.get("/log").text  # 150+ entries, 50 a page
    oldest = alice.get("/log?before=20").text
    assert '<a href="/n/acme/bert/v/1.0">acme/bert:1.0</a>' in oldest
    assert "acme/bert tag latest → 1.1" in oldest
    assert "acme: key old-release" in oldest


def test_log_entries_of_unreadable_namespaces_are_redacted(web: WebApp) -> None:
    carol = web.signed_in("carol")
    pages = "".join(carol.get(f"/log?before={b}").text for b in (50, 100, 150, 200))
    assert "acme" not in pages and "not visible to you" in pages
    assert "open/bulk-000:1.0" in pages  # public namespace entries are shown
    assert "of carol</td>" in pages  # her own token revocation
    alice = web.signed_in("alice").get("/log?before=100").text
    assert "acme/many:0." in alice and "of carol" not in alice
    first_key_entry = 0  # seeded first: acme's key trust
    assert carol.get(f"/log/{first_key_entry}").status_code == 404
    assert web.signed_in("alice").get(f"/log/{first_key_entry}").status_code == 200


def test_a_version_links_its_log_entry_with_a_verified_inclusion_proof(web: WebApp) -> None:
    alice = web.signed_in("alice")
    version = alice.get("/n/acme/bert/v/1.1").text
    found = re.search(r'<a href="/log/(\d+)">log entry \1</a>', version)
    assert found, "the version page links its log entry"
    index = int(found.group(1))
    entry = alice.get(f"/log/{index}").text
    assert 'Published: <a href="/n/acme/bert/v/1.1">acme/bert:1.1</a>' in entry
    assert '<span class="badge ok">Verified</span>' in entry
    api = alice.get(
        f"/v1/log/entries/{index}",
        headers={"authorization": f"Bearer {web.data.tokens['alice']}"},
    ).json()
    for hop in api["audit_path"]:
        assert hop in entry
    canonical = re.search(r'<pre class="wrap">(.*?)</pre>', entry, re.S)
    assert canonical and html_unescape(canonical.group(1)) == api["entry"]
    assert web.client().get(f"/log/{index}").status_code == 401
    assert alice.get("/log/999999").status_code == 404


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_consistency_page_proves_growth_and_refuses_impossible_sizes(web: WebApp) -> None:
    client = web.client()
    size = client.get("/v1/log/tree-head").json()["tree_size"]
    html = client.get(f"/log/consistency?first=5&second={size}").text
    assert '<span class="badge ok">Verified</span>' in html
    api = client.get(f"/v1/log/proof/consistency?first=5&second={size}").json()
    assert all(h in html for h in api["proof"])
    bad = client.get(f"/log/consistency?first={size}&second=3")
    assert bad.status_code == 400 and "no consistency proof" in bad.text.lower()


def test_a_tampered_log_entry_no_longer_verifies(fresh_web: WebApp) -> None:
    from sqlalchemy import update

    from modelseal.registry.db.models import LogEntryRow

    alice = fresh_web.signed_in("alice")
    version = alice.get("/n/acme/bert/v/1.0").text
    found = re.search(r'<a href="/log/(\d+)">log entry', version)
    assert found
    index = int(found.group(1))
    with fresh_web.app.state.sessions() as session:
        data = session.get(LogEntryRow, index).data
        forged = bytes(data).replace(b'"version":"1.0"', b'"version":"6.6"')
        assert forged != data
        session.execute(update(LogEntryRow).where(LogEntryRow.idx == index).values(data=forged))
        session.commit()
    entry = alice.get(f"/log/{index}").text
    assert '<span class="badge bad">Does not verify</span>' in entry


def test_a_missing_blob_gives_an_html_error_page_not_a_traceback(fresh_web: WebApp) -> None:
    from modelseal.registry.db.models import Model, Version

    with fresh_web.app.state.sessions() as session:
        model = session.query(Model).filter_by(name="bert").one()
        digest = session.query(Version).filter_by(model_id=model.id, name="1.0").one().sbom_digest
    fresh_web.app.state.store.delete(digest)
    response = fresh_web.signed_in("alice").get("/n/acme/bert/v/1.0/sbom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Internal server error" in response.text and "Traceback" not in response.text
