"""Loading the encoder on PyTorch prints nothing a user cannot act on: peft's call into a
deprecated transformers API (a FutureWarning on every load) is silenced where it happens, not
by a blanket filter in the CLI."""

import warnings

from polarity.predictor import load_classifier


def test_loading_on_torch_raises_no_future_warning(trained_tiny):
    assert (trained_tiny / "adapter").is_dir()  # the peft path that used to warn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_classifier(trained_tiny, runtime="torch")
        model.predict(["fine"])
    assert model.info.runtime == "torch"
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], \
        [str(w.message) for w in caught]


def test_the_cli_filters_no_warning_category():
    import inspect

    import polarity.cli

    assert "filterwarnings" not in inspect.getsource(polarity.cli)
