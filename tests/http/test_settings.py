"""Settings.from_env: defaults, parsing, and a clear ValueError for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.settings import ConfigurationError, Settings
from core.model import DEFAULT_MODEL_DIR


def test_an_empty_environment_gives_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.store_url == "sqlite:///predictions.db"
    assert settings.model_dir == DEFAULT_MODEL_DIR
    assert settings.api_key is None and not settings.predict_requires_key
    assert (settings.max_body_bytes, settings.max_batch) == (1 << 20, 100)
    assert settings.log_level == "INFO" and not settings.on_heroku


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "STORE_URL": "dynamodb://predictions",
            "MODEL_DIR": "/models/titanic",
            "API_KEY": "k-123",
            "PREDICT_REQUIRES_KEY": "yes",
            "MAX_BODY_BYTES": "2048",
            "MAX_BATCH": "10",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5000",
            "LOG_LEVEL": "debug",
            "DYNO": "web.1",
            "WEB_CONCURRENCY": "3",
            "MAX_STRING_LENGTH": "64",
            "REQUEST_TIMEOUT": "30",
            "UNRELATED": "ignored",
        }
    )
    assert settings == Settings(
        store_url="dynamodb://predictions",
        model_dir=Path("/models/titanic"),
        api_key="k-123",
        predict_requires_key=True,
        max_body_bytes=2048,
        max_batch=10,
        aws_region="eu-west-1",
        dynamodb_endpoint_url="http://127.0.0.1:5000",
        log_level="DEBUG",
        dyno="web.1",
        web_concurrency=3,
        max_string_length=64,
        request_timeout=30,
    )
    assert settings.on_heroku


def test_aws_default_region_is_the_fallback() -> None:
    assert Settings.from_env({"AWS_DEFAULT_REGION": "us-east-1"}).aws_region == "us-east-1"


def test_an_empty_api_key_means_no_key() -> None:
    assert Settings.from_env({"API_KEY": ""}).api_key is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MAX_BATCH": "many"}, "MAX_BATCH"),
        ({"MAX_BATCH": "0"}, "MAX_BATCH"),
        ({"MAX_BATCH": "101"}, "MAX_BATCH"),
        ({"MAX_BODY_BYTES": "1.5"}, "MAX_BODY_BYTES"),
        ({"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"),
        ({"PREDICT_REQUIRES_KEY": "maybe"}, "PREDICT_REQUIRES_KEY"),
        ({"PREDICT_REQUIRES_KEY": "true"}, "PREDICT_REQUIRES_KEY"),  # the message names API_KEY
        ({"API_KEY": "has space"}, "API_KEY"),
        ({"API_KEY": "caf\u00e9"}, "API_KEY"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
        ({"WEB_CONCURRENCY": "100"}, "WEB_CONCURRENCY"),
        ({"MAX_STRING_LENGTH": "0"}, "MAX_STRING_LENGTH"),
        ({"REQUEST_TIMEOUT": "1.5"}, "REQUEST_TIMEOUT"),
        ({"REQUEST_TIMEOUT": "0"}, "REQUEST_TIMEOUT"),
    ],
)
def test_bad_values_are_a_value_error_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{named}=") as raised:
        Settings.from_env(environ)
    assert isinstance(raised.value, ValueError) and raised.value.variable == named and raised.value.fix
    assert "\n" not in str(raised.value)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.max_batch = 5  # type: ignore[misc]
