"""text-embeddings-inference's /predict and the root /, on the one contract; and the real
huggingface_hub InferenceClient against a running service."""

import math

import pytest
from serve_helpers import KEY, live_server, make_client, wait_ready

H = {"X-API-Key": KEY}


def test_a_single_input_gets_both_labels_highest_first(client):
    for inputs in ("a good day", ["a good day"]):
        r = client.post("/predict", json={"inputs": inputs}, headers=H)
        assert r.status_code == 200, r.text
        assert r.json() == [{"label": "POSITIVE", "score": pytest.approx(0.9)},
                            {"label": "NEGATIVE", "score": pytest.approx(0.1)}]
    r = client.post("/predict", json={"inputs": "bad"}, headers=H)
    assert [x["label"] for x in r.json()] == ["NEGATIVE", "POSITIVE"]


def test_a_batch_is_one_model_call_and_a_list_per_input(client):
    model = client.app.state.service.predictor
    before = len(model.calls)
    r = client.post("/", json={"inputs": [["good"], ["bad"], ["so good"]]}, headers=H)
    assert r.status_code == 200, r.text
    assert [x[0]["label"] for x in r.json()] == ["POSITIVE", "NEGATIVE", "POSITIVE"]
    assert all(len(x) == 2 for x in r.json()) and model.calls[before:] == [3]


def test_the_answers_are_those_of_the_own_api(client):
    ours = client.post("/api/v1/analyze", json={"text": "meh"}, headers=H).json()
    theirs = client.post("/predict", json={"inputs": "meh"}, headers=H).json()
    assert {x["label"]: x["score"] for x in theirs} == ours["scores"]


def test_raw_scores_are_logits_whose_softmax_is_the_probability(client):
    r = client.post("/predict", json={"inputs": "good", "raw_scores": True}, headers=H)
    raw = {x["label"]: x["score"] for x in r.json()}
    assert raw["POSITIVE"] == pytest.approx(-raw["NEGATIVE"])
    p = 1 / (1 + math.exp(raw["NEGATIVE"] - raw["POSITIVE"]))
    assert p == pytest.approx(0.9)
    same = client.post("/predict", json={"inputs": "good", "truncate": True}, headers=H)
    assert same.json()[0]["score"] == pytest.approx(0.9)


def test_inference_api_parameters_give_a_list_per_input(client):
    r = client.post("/", json={"inputs": "good", "parameters": {}}, headers=H)
    assert [[x["label"] for x in r.json()[0]]] == [["POSITIVE", "NEGATIVE"]]
    r = client.post("/", json={"inputs": "good", "parameters": {"top_k": 1}}, headers=H)
    assert r.json() == [[{"label": "POSITIVE", "score": pytest.approx(0.9)}]]
    r = client.post("/", json={"inputs": "good", "parameters": {"function_to_apply": "none"}},
                    headers=H)
    assert r.json()[0][0]["score"] == pytest.approx(math.log(9) / 2)


@pytest.mark.parametrize("inputs, words", [
    (["a", "b"], "pair of texts"), ([["a", "b"]], "pair of texts"),
    ([["a"], "b"], "inside a batch"), (["a", "b", "c"], "holds 3 strings"),
    ("   ", "empty or only whitespace"), ([["ok"], ["\u200b"]], "inputs[1] is empty"),
    ([], "inputs is empty"), (5, "inputs")])
def test_bad_inputs_are_400_saying_what_to_send(client, inputs, words):
    r = client.post("/predict", json={"inputs": inputs}, headers=H)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request"
    assert words in r.json()["error"]["message"]


def test_the_same_key_limits_and_quota():
    with make_client(max_batch_items=2, rate_limit="3/hour") as c:
        wait_ready(c)
        assert c.post("/predict", json={"inputs": "good"}).status_code == 401
        r = c.post("/predict", json={"inputs": [["a"], ["b"], ["c"]]}, headers=H)
        assert r.status_code == 400 and "at most 2" in r.json()["error"]["message"]
        r = c.post("/", json={"inputs": [["a"], ["b"]]}, headers=H)
        assert r.headers["X-RateLimit-Remaining"] == "1"
        c.post("/api/v1/analyze", json={"text": "a"}, headers=H)
        r = c.post("/predict", json={"inputs": "good"}, headers=H)
        assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limited"


def test_huggingface_hub_inference_client_works_unchanged(monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    # The tests' offline mode keeps hub downloads away; this client talks to localhost only.
    from huggingface_hub import constants, errors

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with live_server() as url:
        client = hub.InferenceClient(url, api_key=KEY)
        out = client.text_classification("what a good day")
        assert [(x.label, round(x.score, 6)) for x in out] == [("POSITIVE", 0.9),
                                                                ("NEGATIVE", 0.1)]
        assert client.text_classification("awful", top_k=1)[0].label == "NEGATIVE"
        with pytest.raises(errors.HfHubHTTPError) as refused:
            hub.InferenceClient(url, api_key="wrong").text_classification("good")
        assert refused.value.response.status_code == 401
