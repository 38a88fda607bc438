"""Request bodies the JSON decoder cannot take: a clear 400, never a 500 with a traceback."""

import logging

import pytest
from serve_helpers import KEY, WordCounter, make_client, wait_ready

from polarity.serve.bodies import LARGE_BODY


@pytest.mark.parametrize("depth", [100_000, 5_000])  # parsed in a thread / by FastAPI
@pytest.mark.parametrize("path,shape", [("/api/v1/analyze", "{}"),
                                        ("/api/v1/analyze", '{{"text": {}}}'),
                                        ("/api/v1/analyze/batch", '{{"texts": {}}}')])
def test_deeply_nested_json_is_a_clear_400_and_logs_no_traceback(depth, path, shape, caplog):
    body = shape.format("[" * depth + "]" * depth)
    assert (len(body) > LARGE_BODY) == (depth == 100_000)  # both parsing paths are covered
    model = WordCounter()
    with make_client(predictor=model) as c:
        wait_ready(c)
        with caplog.at_level(logging.INFO, logger="polarity"):
            r = c.post(path, content=body, headers={"X-API-Key": KEY,
                                                    "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nested too deeply" in r.json()["error"]["message"]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info]
    assert model.calls == []
