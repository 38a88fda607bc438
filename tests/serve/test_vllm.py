"""vLLM's /classify and /v1/classify, on the one contract, with plain JSON as vLLM's docs
send it."""

import pytest
from serve_helpers import KEY, make_client, wait_ready

H = {"X-API-Key": KEY}


def test_classify_answers_in_vllms_shape(client):
    r = client.post("/classify", json={"model": "default", "input": ["a good day", "bad"]},
                    headers=H)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["model"] == "default"
    assert body["id"] == f"classify-{r.headers['X-Request-ID']}"
    assert isinstance(body["created"], int)
    assert [(d["index"], d["label"], d["num_classes"]) for d in body["data"]] == [
        (0, "POSITIVE", 2), (1, "NEGATIVE", 2)]
    assert body["data"][0]["probs"] == [pytest.approx(0.1), pytest.approx(0.9)]  # NEG, POS
    # the stand-in model counts no tokens: characters
    assert body["usage"] == {"prompt_tokens": 13, "total_tokens": 13, "completion_tokens": 0,
                             "prompt_tokens_details": None}


def test_v1_classify_takes_one_string_and_no_model(client):
    r = client.post("/v1/classify", json={"input": "good"}, headers=H)
    assert r.status_code == 200 and r.json()["data"][0]["label"] == "POSITIVE"
    assert len(r.json()["data"]) == 1


def test_use_activation_false_gives_logits(client):
    for flag in ("use_activation", "softmax", "activation"):
        r = client.post("/classify", json={"input": "good", flag: False}, headers=H)
        neg, pos = r.json()["data"][0]["probs"]
        assert pos == pytest.approx(-neg) and pos > 1


def test_another_model_is_404_from_the_one_error_table(client):
    r = client.post("/classify", json={"model": "gpt-9", "input": "good"}, headers=H)
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["type"] == "model_not_found" and "'default'" in error["message"]


@pytest.mark.parametrize("body, words", [
    ({"input": [101, 2307, 102]}, "token ids"), ({"input": [[101, 102]]}, "token ids"),
    ({"input": ""}, "input is empty or only whitespace"), ({"input": []}, "input is empty"),
    ({"input": ["ok", " "]}, "input[1] is empty"), ({"input": "a", "top_p": 1},
                                                    "top_p: unknown field")])
def test_bad_requests_are_400_saying_what_to_send(client, body, words):
    r = client.post("/classify", json=body, headers=H)
    assert r.status_code == 400 and words in r.json()["error"]["message"], r.text


def test_the_same_key_limits_and_quota():
    with make_client(rate_limit="2/hour", max_text_chars=10) as c:
        wait_ready(c)
        assert c.post("/v1/classify", json={"input": "good"}).status_code == 401
        r = c.post("/classify", json={"input": "x" * 11}, headers=H)
        assert r.status_code == 400 and "longer than 10" in r.json()["error"]["message"]
        assert c.post("/classify", json={"input": ["a", "b"]}, headers=H).status_code == 200
        r = c.post("/api/v1/analyze", json={"text": "a"}, headers=H)
        assert r.status_code == 429
