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

    for url in ("notaurl", "ftp://cache:21"):
        with pytest.raises(InputError, match="REDIS_URL .* is not valid: use e.g. redis://"):
            RateLimiter("10/minute", url)
    assert RateLimiter("10/minute", "rediss://cache:6380/0").item.amount == 10


def test_serve_with_a_model_that_does_not_resolve_fails_before_starting(tmp_path, capsys,
                                                                       monkeypatch):
    import polarity.serve.run

    monkeypatch.setattr(polarity.serve.run, "serve", lambda settings: pytest.fail("started"))
    assert main(["serve", "--no-auth", "--model", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("polarity serve: error: model") and "not found" in err


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
