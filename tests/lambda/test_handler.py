"""handler.handler with the events AWS really sends: API Gateway REST (v1), HTTP API (v2), ALB, Function URL."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).parent / "events"
Handler = Callable[[Any, Any], dict[str, Any]]
Change = Callable[[], Any]
RECORD_FIELDS = {
    "id", "observation_id", "observation", "proba", "predicted_class", "threshold", "model_version",
    "true_class", "warnings", "created_at", "updated_at",
}


class FakeContext:
    """The attributes of the LambdaContext the Python runtime passes."""

    function_name = "sklearn-serve-prod-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:sklearn-serve-prod-api"
    memory_limit_in_mb = 512
    aws_request_id = "8f3c1a2b-1111-2222-3333-444455556666"
    log_group_name = "/aws/lambda/sklearn-serve-prod-api"
    log_stream_name = "2026/11/25/[$LATEST]0123456789abcdef0123456789abcdef"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 29_000


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def body_of(response: dict[str, Any]) -> Any:
    raw = response["body"]
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw)


def header(response: dict[str, Any], name: str) -> str:
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    return headers[name]  # type: ignore[no-any-return]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "predictions.db"


@pytest.fixture
def load_handler(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Handler]]:
    """Import handler.py afresh, as a cold start does, with the given environment."""

    def load(**environ: str) -> Handler:
        for name in ("API_KEY", "PREDICT_REQUIRES_KEY", "MODEL_DIR", "MAX_BODY_BYTES", "MAX_BATCH", "DYNO"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("STORE_URL", f"sqlite:///{store_path}")
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("handler", None)
        return importlib.import_module("handler").handler  # type: ignore[no-any-return]

    yield load
    sys.modules.pop("handler", None)


@pytest.fixture
def handler(load_handler: Callable[..., Handler]) -> Handler:
    return load_handler()


def test_rest_api_v1_event_predicts_the_readme_observation(handler: Handler, store_path: Path) -> None:
    response = handler(event("apigw_rest_v1_predict"), FakeContext())

    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is False
    assert header(response, "content-type") == "application/json"
    assert header(response, "x-request-id") == "client-req-0001"
    record = body_of(response)
    assert set(record) == RECORD_FIELDS
    assert record["id"] == record["observation_id"] == 0
    assert store_path.exists()


def test_http_api_v2_event_with_a_base64_body_predicts_a_batch(handler: Handler) -> None:
    request = event("http_api_v2_batch_base64")
    assert request["isBase64Encoded"] is True

    response = handler(request, FakeContext())

    assert response["statusCode"] == 200
    assert [p["id"] for p in body_of(response)["predictions"]] == ["passenger-1", "passenger-2"]
    assert len(header(response, "x-request-id")) == 32


def test_a_function_serves_no_metrics_and_its_document_says_so(handler: Handler) -> None:
    # Each container would count alone since its cold start: a scrape reaching one of many.
    request = event("function_url_list")
    request["rawPath"] = request["requestContext"]["http"]["path"] = "/metrics"
    request["rawQueryString"], request["queryStringParameters"] = "", None
    metrics = handler(request, FakeContext())
    request["rawPath"] = request["requestContext"]["http"]["path"] = "/openapi.json"
    document = body_of(handler(request, FakeContext()))

    assert metrics["statusCode"] == 404 and body_of(metrics)["type"].endswith("/not-found")
    assert "/metrics" not in document["paths"] and "/predict" in document["paths"]


def test_alb_event_updates_a_stored_prediction(handler: Handler) -> None:
    missing = handler(event("alb_update"), FakeContext())
    handler(event("apigw_rest_v1_predict"), FakeContext())
    updated = handler(event("alb_update"), FakeContext())

    assert missing["statusCode"] == 404
    assert header(missing, "content-type") == "application/problem+json"
    assert missing["isBase64Encoded"] is False
    assert body_of(missing)["type"].endswith("/unknown-prediction")
    assert updated["statusCode"] == 200
    assert body_of(updated)["true_class"] == 1


def test_function_url_event_lists_newest_first_with_its_query_string(handler: Handler) -> None:
    handler(event("apigw_rest_v1_predict"), FakeContext())
    handler(event("http_api_v2_batch_base64"), FakeContext())

    response = handler(event("function_url_list"), FakeContext())

    assert response["statusCode"] == 200
    page = body_of(response)
    assert len(page["predictions"]) == 2 and page["next_cursor"] is not None
    assert {p["id"] for p in page["predictions"]} == {"passenger-1", "passenger-2"}


def test_predictions_survive_a_new_container_on_the_same_store(load_handler: Callable[..., Handler]) -> None:
    first = load_handler()(event("apigw_rest_v1_predict"), FakeContext())
    request = event("function_url_list")
    request["rawPath"] = request["requestContext"]["http"]["path"] = "/predictions/0"
    request["rawQueryString"], request["queryStringParameters"] = "", {}

    again = load_handler()(request, FakeContext())

    assert again["statusCode"] == 200
    assert body_of(again) == body_of(first)


def test_problems_come_back_as_text_not_base64(handler: Handler) -> None:
    request = event("http_api_v2_batch_base64")
    request["body"] = base64.b64encode(b'{"observations": [{"id": 1}]}').decode()

    response = handler(request, FakeContext())

    assert response["statusCode"] == 422
    assert response["isBase64Encoded"] is False
    assert body_of(response)["errors"] == [{"field": "observations[0].observation", "message": "is required"}]


def test_malformed_body_through_api_gateway_is_400(handler: Handler) -> None:
    request = event("apigw_rest_v1_predict")
    request["body"] = '{"id": 0, "observation": {"Age": NaN}}'
    response = handler(request, FakeContext())
    assert response["statusCode"] == 400
    assert body_of(response)["type"].endswith("/malformed-request")


def test_body_over_the_limit_through_api_gateway_is_413(load_handler: Callable[..., Handler]) -> None:
    handler = load_handler(MAX_BODY_BYTES="64")
    response = handler(event("apigw_rest_v1_predict"), FakeContext())
    assert response["statusCode"] == 413


def test_the_api_key_is_enforced_behind_api_gateway(load_handler: Callable[..., Handler]) -> None:
    handler = load_handler(API_KEY="lambda-key-0123456789")
    request = event("function_url_list")

    refused = handler(copy.deepcopy(request), FakeContext())
    request["headers"]["authorization"] = "Bearer lambda-key-0123456789"
    allowed = handler(request, FakeContext())

    assert refused["statusCode"] == 401
    assert header(refused, "www-authenticate").startswith("Bearer")
    assert allowed["statusCode"] == 200


def test_unknown_route_and_wrong_method_are_problems(handler: Handler) -> None:
    request = event("apigw_rest_v1_predict")
    request["httpMethod"] = "GET"
    request["body"] = None
    wrong_method = handler(copy.deepcopy(request), FakeContext())
    request["path"] = "/nowhere"
    unknown = handler(request, FakeContext())

    assert wrong_method["statusCode"] == 405
    assert header(wrong_method, "allow") == "POST"
    assert unknown["statusCode"] == 404
    assert header(unknown, "content-type") == "application/problem+json"


def test_health_and_docs_through_a_function_url(handler: Handler) -> None:
    request = event("function_url_list")
    request["rawQueryString"], request["queryStringParameters"] = "", {}
    for path, media_type in (("/health", "application/json"), ("/docs", "text/html; charset=utf-8")):
        request["rawPath"] = request["requestContext"]["http"]["path"] = path
        response = handler(copy.deepcopy(request), FakeContext())
        assert response["statusCode"] == 200, path
        assert response["isBase64Encoded"] is False
        assert header(response, "content-type") == media_type


# handler.handler never raises: every event that is not a well-formed HTTP event gets a 400 problem
# in the shape of the event it came closest to, and one log line saying what was wrong. Each of
# these raised inside Mangum before adapters/lambda_events.py (Lambda answers that with an opaque
# 502, and retries an asynchronous invoke).


def v2(**changes: Any) -> dict[str, Any]:
    request = event("function_url_list")
    request.update(changes)
    return request


def v2_without(*names: str) -> dict[str, Any]:
    request = event("function_url_list")
    for name in names:
        del request[name]
    return request


def v2_context(**http: Any) -> dict[str, Any]:
    request = event("function_url_list")
    request["requestContext"]["http"] = http
    return request


def alb(**changes: Any) -> dict[str, Any]:
    request = event("alb_update")
    request.update(changes)
    return request


def alb_without_headers() -> dict[str, Any]:
    request = event("alb_update")
    del request["headers"]
    return request


def v2_post(body: Any, encoded: bool) -> dict[str, Any]:
    request = event("http_api_v2_batch_base64")
    request["body"], request["isBase64Encoded"] = body, encoded
    return request


# (name, event builder, the shape of the answer, words the problem must contain)
BAD_EVENTS: list[tuple[str, Change, str, str]] = [
    ("empty object", lambda: {}, "http-api-v2", "requestContext"),
    ("None", lambda: None, "http-api-v2", "not an object"),
    ("a list", lambda: [1, 2], "http-api-v2", "not an object"),
    ("a string", lambda: "POST /predict", "http-api-v2", "not an object"),
    ("a bare observation (direct invoke)", lambda: {"Age": 22.0, "Sex": "male"}, "http-api-v2", "direct invoke"),
    ("v2 headers null", lambda: v2(headers=None), "http-api-v2", "headers"),
    ("v2 rawQueryString null", lambda: v2(rawQueryString=None), "http-api-v2", "rawQueryString"),
    ("v2 body is an object", lambda: v2_post({"id": 1}, False), "http-api-v2", "body must be a string"),
    ("v2 empty requestContext.http", lambda: v2_context(), "http-api-v2", "requestContext.http.method"),
    ("v2 no requestContext", lambda: v2_without("requestContext"), "http-api-v2", "requestContext"),
    ("version 3.0", lambda: v2(version="3.0"), "http-api-v2", "payload version"),
    ("base64 flag on a body that is not base64", lambda: v2_post("{not base64!}", True), "http-api-v2", "base64"),
    ("ALB without headers", alb_without_headers, "alb", "headers"),
    ("ALB headers null", lambda: alb(headers=None), "alb", "headers"),
    ("REST v1 httpMethod missing", lambda: {**event("apigw_rest_v1_predict"), "httpMethod": None}, "rest-api-v1",
     "httpMethod"),
    ("REST v1 header value not a string", lambda: {**event("apigw_rest_v1_predict"), "headers": {"accept": 1}},
     "rest-api-v1", "headers"),
    ("v2 Host with a port that is not a number", lambda: v2(headers={"host": "example.com:https"}), "http-api-v2",
     "Host"),
    ("v2 cookies not a list", lambda: v2(cookies="a=1"), "http-api-v2", "cookies"),
]


@pytest.mark.parametrize(("name", "make", "shape", "words"), BAD_EVENTS, ids=[b[0] for b in BAD_EVENTS])
def test_a_malformed_event_gets_a_400_problem_and_one_log_line(
    handler: Handler, caplog: pytest.LogCaptureFixture, name: str, make: Change, shape: str, words: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="sklearn_serve"):
        response = handler(make(), FakeContext())

    assert response["statusCode"] == 400, name
    assert response["isBase64Encoded"] is False
    assert header(response, "content-type") == "application/problem+json"
    problem = body_of(response)
    assert problem["type"].endswith("/bad-event") and problem["status"] == 400
    assert words in problem["detail"], problem["detail"]
    assert problem["request_id"] == FakeContext.aws_request_id
    assert ("statusDescription" in response) == (shape == "alb")
    lines = [r for r in caplog.records if r.name == "sklearn_serve.lambda"]
    assert len(lines) == 1
    logged = json.loads(lines[0].getMessage())
    assert logged["event"] == "bad_lambda_event" and logged["shape"] == shape and words in logged["problem"]


def test_an_alb_event_with_multi_value_headers_is_answered_with_multi_value_headers(handler: Handler) -> None:
    request = event("alb_update")
    request["multiValueHeaders"] = {k: [v] for k, v in request.pop("headers").items()}
    request["body"] = {"id": 0}

    response = handler(request, FakeContext())

    assert response["statusCode"] == 400 and response["statusDescription"] == "400 Bad Request"
    assert "headers" not in response
    assert response["multiValueHeaders"]["content-type"] == ["application/problem+json"]


def test_well_formed_events_of_every_kind_still_get_their_answers(handler: Handler) -> None:
    assert handler(event("apigw_rest_v1_predict"), FakeContext())["statusCode"] == 200
    assert handler(event("http_api_v2_batch_base64"), FakeContext())["statusCode"] == 200
    assert handler(event("alb_update"), FakeContext())["statusCode"] == 200
    assert handler(event("function_url_list"), FakeContext())["statusCode"] == 200


def test_rest_v1_null_headers_and_query_strings_are_what_api_gateway_sends_when_there_are_none(
    handler: Handler,
) -> None:
    request = event("apigw_rest_v1_predict")
    request.update(headers=None, multiValueHeaders=None, queryStringParameters=None,
                   multiValueQueryStringParameters=None)
    response = handler(request, FakeContext())
    assert response["statusCode"] == 200, body_of(response)


def test_a_valid_base64_body_is_still_decoded(handler: Handler) -> None:
    request = copy.deepcopy(event("http_api_v2_batch_base64"))
    body = base64.b64decode(request["body"])
    request["body"] = base64.b64encode(body).decode()
    assert handler(request, FakeContext())["statusCode"] == 200


def test_a_cold_start_with_a_bad_setting_logs_one_line_and_answers_503(
    load_handler: Callable[..., Handler], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sklearn_serve"):
        handler = load_handler(MODEL_DIR="/nonexistent/model")
    init_lines = [json.loads(r.getMessage()) for r in caplog.records if "configuration_error" in r.getMessage()]
    assert len(init_lines) == 1
    assert init_lines[0]["variable"] == "MODEL_DIR"
    assert "/nonexistent/model" in init_lines[0]["message"] and "Fix: " in init_lines[0]["message"]
    assert not any(r.exc_info for r in caplog.records)

    response = handler(event("apigw_rest_v1_predict"), FakeContext())

    assert response["statusCode"] == 503
    assert body_of(response)["type"].endswith("/misconfigured")


def test_whatever_escapes_the_adapter_is_a_500_problem_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mangum import Mangum

    from adapters.lambda_events import GuardedHandler

    class FailingAdapter(Mangum):
        def __call__(self, event: Any, context: Any) -> dict[str, Any]:
            raise RuntimeError("a bug below the app")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not reached")

    with caplog.at_level(logging.ERROR, logger="sklearn_serve"):
        response = GuardedHandler(FailingAdapter(app, lifespan="off"))(event("alb_update"), FakeContext())

    assert response["statusCode"] == 500 and response["statusDescription"] == "500 Internal Server Error"
    assert body_of(response)["type"].endswith("/internal")
    assert "a bug below the app" not in response["body"]
    assert [r.exc_info is not None for r in caplog.records if r.name == "sklearn_serve.lambda"] == [True]
