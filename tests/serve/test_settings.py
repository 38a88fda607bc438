from pathlib import Path

import pytest

from polarity.cli import main
from polarity.errors import InputError
from polarity.serve.security import KeyStore, read_key_hashes
from polarity.serve.settings import load_settings, to_environ


def test_precedence_yaml_then_environment_then_flags(tmp_path):
    cfg = tmp_path / "deploy.yaml"
    cfg.write_text("service:\n  port: 9000\n  rate_limit: 5/minute\n  batch_size: 8\n")
    env = {"PORT": "9100", "API_KEYS": "a, b", "AUTH_DISABLED": "false"}
    s = load_settings(cfg, environ=env, batch_size=16)
    assert (s.port, s.rate_limit, s.batch_size) == (9100, "5/minute", 16)
    assert s.accepted_plain_keys() == ["a", "b"]


def test_environment_round_trip():
    s = load_settings(None, environ={"API_KEY": "k", "WORKERS": "2", "REDIS_URL": "redis://x"})
    again = load_settings(None, environ=to_environ(s))
    assert again == s


def test_bad_values_are_clear(tmp_path):
    with pytest.raises(InputError, match="port"):
        load_settings(None, environ={"PORT": "eighty"})
    with pytest.raises(InputError, match="not found"):
        load_settings(tmp_path / "missing.yaml", environ={})


def test_bad_redis_url_is_clear():
    from polarity.serve.ratelimit import RateLimiter

    for url in ("notaurl", "ftp://cache:21", "http://user:s3cret-pw@cache:6379"):
        with pytest.raises(InputError, match="REDIS_URL .* is not valid: use e.g. redis://"
                           ) as caught:
            RateLimiter("10/minute", url)
        assert "s3cret" not in str(caught.value)  # a URL's password is never echoed
    assert RateLimiter("10/minute", "rediss://cache:6380/0").item.amount == 10


def test_serve_with_a_model_that_does_not_resolve_fails_before_starting(tmp_path, capsys,
                                                                       monkeypatch):
    import polarity.serve.run

    monkeypatch.setattr(polarity.serve.run, "serve", lambda settings: pytest.fail("started"))
    assert main(["serve", "--no-auth", "--model", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("polarity serve: error: model") and "not found" in err


def test_several_workers_without_shared_limits_refuse_to_start(monkeypatch, capsys):
    import polarity.serve.run

    monkeypatch.setattr(polarity.serve.run, "serve", lambda settings: pytest.fail("started"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("ALLOW_UNSHARED_LIMITS", raising=False)
    assert main(["serve", "--no-auth", "--model", "vader", "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "2 workers without REDIS_URL" in err and "ALLOW_UNSHARED_LIMITS=true" in err
    started = []
    monkeypatch.setattr(polarity.serve.run, "serve", started.append)
    assert main(["serve", "--no-auth", "--model", "vader", "--workers", "2",
                 "--allow-unshared-limits", "true"]) == 0
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["serve", "--no-auth", "--model", "vader", "--workers", "2"]) == 0
    assert len(started) == 2


@pytest.mark.parametrize("flag, variable", [("--api-key", "API_KEY"), ("--api-keys", "API_KEYS"),
                                            ("--redis-url", "REDIS_URL")])
def test_secrets_are_refused_as_flags(flag, variable, monkeypatch, capsys):
    import polarity.serve.run

    monkeypatch.setattr(polarity.serve.run, "serve", lambda settings: pytest.fail("started"))
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--model", "vader", flag, "pk_do-not-echo"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"set {variable} in the environment" in err
    assert "pk_do-not-echo" not in err


def test_several_ray_replicas_without_shared_limits_refuse_to_start():
    from polarity.serve.ray_serve import deploy
    from polarity.serve.settings import Settings

    with pytest.raises(InputError, match="2 replicas without REDIS_URL"):
        deploy(Settings(api_key="k"), replicas=2)


def test_default_deployment_config_is_read():
    root = Path(__file__).parents[2]
    s = load_settings(root / "configs" / "deployment_config.yaml", environ={})
    assert s.rate_limit == "1000/hour" and s.port == 8000


def test_keys_create_stores_only_a_hash(tmp_path, capsys):
    keys = tmp_path / "keys.txt"
    assert main(["keys", "create", "--file", str(keys), "--name", "ci"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("pk_") and key not in keys.read_text()
    store = KeyStore.build([], str(keys))
    assert store.check(key) and store.check(key + "x") is None and store.check(None) is None
    assert len(read_key_hashes(keys)) == 1
    assert oct(keys.stat().st_mode & 0o777) == "0o600"


def test_malformed_keys_file_is_rejected(tmp_path):
    bad = tmp_path / "keys.txt"
    bad.write_text("# comment\nnot-a-hash\n")
    with pytest.raises(InputError, match="keys.txt:2"):
        read_key_hashes(bad)


@pytest.mark.parametrize("variable, value, field", [
    ("BATCH_SIZE", "0", "batch_size"), ("MAX_QUEUE", "0", "max_queue"),
    ("WORKERS", "0", "workers"), ("PORT", "70000", "port"), ("MAX_WAIT_MS", "-1", "max_wait_ms"),
    ("LOG_LEVEL", "loud", "log_level"), ("RUNTIME", "gpu", "runtime"),
    ("HEADER_TIMEOUT_S", "0", "header_timeout_s"), ("RATE_LIMIT_ON_ERROR", "maybe",
                                                    "rate_limit_on_error")])
def test_every_setting_has_bounds(variable, value, field):
    # BATCH_SIZE=0 used to start, then answer 500 to every request
    with pytest.raises(InputError, match=field):
        load_settings(None, environ={"API_KEY": "k", variable: value})


def test_library_variables_reach_the_model_options():
    s = load_settings(None, environ={"POLARITY_RUNTIME": "torch", "POLARITY_NUM_THREADS": "3",
                                     "MAX_LENGTH": "64"})
    options = s.load_options()
    assert (options.runtime, options.threads, options.max_length) == ("torch", 3, 64)
    assert load_settings(None, environ={"POLARITY_RUNTIME": "torch", "RUNTIME": "onnx"}
                         ).runtime == "onnx"  # the service's own name wins


def test_overrides_reach_the_model(trained_tiny):
    from serve_helpers import KEY, make_client, wait_ready

    with make_client(predictor=None, model_path=str(trained_tiny), max_length=16,
                     threads=1) as c:
        wait_ready(c)
        model = c.app.state.service.predictor
        assert model.card.max_length == 16 and model.info.threads == 1
        long = " ".join(["the movie was great"] * 10)  # 40 words: more than one 16-token window
        r = c.post("/api/v1/analyze", json={"text": long}, headers={"X-API-Key": KEY})
        assert r.json()["windows"] > 1


def test_settings_built_directly_read_no_environment(monkeypatch, tmp_path):
    # environment variables are read once, by load_settings at the process edge
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("POLARITY_RUNTIME", "torch")
    from polarity.serve.settings import Settings

    assert (Settings().port, Settings().runtime) == (8000, None)
    assert load_settings(None).port == 9999
    flat = tmp_path / "flat.yaml"
    flat.write_text("port: 9001\n")
    assert load_settings(flat, environ={}).port == 9001
    flat.write_text("service: 3\n")
    with pytest.raises(InputError, match="'service' must hold a mapping"):
        load_settings(flat, environ={})
