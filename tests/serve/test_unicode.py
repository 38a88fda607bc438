"""A lone UTF-16 surrogate (half an emoji) gets the Python API's message over HTTP too."""

import pytest
from serve_helpers import KEY, make_client, wait_ready

from polarity import load_classifier
from polarity.errors import InputError

H = {"X-API-Key": KEY, "Content-Type": "application/json"}


def test_a_lone_surrogate_says_what_to_fix_as_the_python_api_does():
    with pytest.raises(InputError) as python:
        load_classifier("vader").predict(["ok \ud83d"])
    expected = str(python.value).removeprefix("text #0 ")
    with make_client() as c:
        wait_ready(c)
        one = c.post("/api/v1/analyze", content='{"text": "ok \\ud83d"}', headers=H)
        batch = c.post("/api/v1/analyze/batch", content='{"texts": ["fine", "ok \\ud83d"]}',
                       headers=H)
        pair = c.post("/api/v1/analyze", content='{"text": "ok \\ud83d\\ude00"}', headers=H)
    assert one.status_code == batch.status_code == 400
    assert one.json()["error"]["message"] == f"text {expected}"
    assert batch.json()["error"]["message"] == f"texts[1] {expected}"
    assert pair.status_code == 200  # a whole surrogate pair is an emoji
