"""The documentation pages load from the service alone, and the OpenAPI document declares the API key and gives
request examples that the service accepts."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx
import pytest

from banditroute.service.routes.docs import static_dir
from banditroute.service.schemas import ExperimentCreate, FeedbackRequest, PolicyCreate, RouteRequest
from tests.service.conftest import LiveServer

ADDRESS = re.compile(r"(?:https?:)?//[^\s\"'<>)]+")
ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_from_the_service(service: LiveServer, page: str) -> None:
    r = httpx.get(service.url + page)  # no key: the docs are public, like the OpenAPI document
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert ADDRESS.findall(r.text) == [], "the page names an outside address"
    assets = ASSET.findall(r.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/docs/static/"), asset
        a = httpx.get(urljoin(service.url, asset))
        assert a.status_code == 200 and len(a.content) > 100, asset
    assert "/openapi.json" in r.text
    assert httpx.get(service.url + "/openapi.json").status_code == 200


def test_swagger_validator_badge_is_off(service: LiveServer) -> None:
    # Swagger UI's default validator posts the spec's URL to an outside host
    assert '"validatorUrl": null' in httpx.get(service.url + "/docs").text


def test_vendored_assets_ship_with_their_licences() -> None:
    root = static_dir()
    for name in ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css", "redoc/redoc.standalone.js"):
        assert (root / name).stat().st_size > 100_000, name
    for name in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert (root / name).read_text().strip(), name


def test_unknown_asset_is_404(service: LiveServer) -> None:
    assert httpx.get(service.url + "/docs/static/../app.py").status_code == 404
    assert httpx.get(service.url + "/docs/static/nope.js").status_code == 404


def test_openapi_declares_the_api_key(admin: httpx.Client) -> None:
    spec = admin.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["APIKey"]
    assert scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
    for path, method in [
        ("/v1/route", "post"),
        ("/v1/feedback", "post"),
        ("/v1/policies", "post"),
        ("/v1/policies", "get"),
        ("/v1/experiments", "post"),
        ("/v1/decisions/{decision_id}", "get"),
    ]:
        assert {"APIKey": []} in spec["paths"][path][method]["security"], (method, path)
    for path in ("/healthz", "/readyz"):
        assert "security" not in spec["paths"][path]["get"], path


@pytest.mark.parametrize(
    ("schema", "model"),
    [
        ("RouteRequest", RouteRequest),
        ("FeedbackRequest", FeedbackRequest),
        ("PolicyCreate", PolicyCreate),
        ("ExperimentCreate", ExperimentCreate),
    ],
)
def test_openapi_request_examples_are_valid(admin: httpx.Client, schema: str, model: type) -> None:
    examples = admin.get("/openapi.json").json()["components"]["schemas"][schema]["examples"]
    assert len(examples) >= 2
    for example in examples:
        model.model_validate(example)


def test_create_examples_are_accepted_by_the_service(admin: httpx.Client) -> None:
    schemas = admin.get("/openapi.json").json()["components"]["schemas"]
    for example in schemas["PolicyCreate"]["examples"]:
        r = admin.post("/v1/policies", json=example)
        assert r.status_code == 201, r.text
    for example in schemas["ExperimentCreate"]["examples"]:
        r = admin.post("/v1/experiments", json=example)
        assert r.status_code == 201, r.text
    r = admin.post("/v1/route", json=schemas["RouteRequest"]["examples"][-1])
    assert r.status_code == 200, r.text
