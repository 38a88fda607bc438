"""``polarity evaluate`` and ``polarity calibrate``: everything through the Predictor."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from polarity.contract import LoadOptions, label_of
from polarity.drift import reference
from polarity.errors import InputError
from polarity.evaluate.calibration import apply_temperature, fit_temperature
from polarity.evaluate.data import load_test_set
from polarity.evaluate.metrics import compute_metrics, nll, reliability
from polarity.evaluate.profile import profile
from polarity.evaluate.report import write_report
from polarity.evaluate.setup import describe
from polarity.labels import LABELS
from polarity.modelcard import read_card
from polarity.predictor import load_classifier, resolve_model


def predict_all(predictor, texts: list[str], batch_size: int, progress: bool, desc: str
                ) -> tuple[list[float], list[float]]:
    """P(POSITIVE) per text and the batch time divided by batch size (ms) per text."""
    probs, latencies = [], []
    with tqdm(total=len(texts), desc=desc, unit=" texts", disable=not progress) as bar:
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            t0 = time.perf_counter()
            preds = predictor.predict(chunk, batch_size=batch_size)
            per_text = (time.perf_counter() - t0) * 1000 / len(chunk)
            probs += [p.scores[LABELS[1]] for p in preds]
            latencies += [per_text] * len(chunk)
            bar.update(len(chunk))
    return probs, latencies


def evaluate(models: list[str], test_file: str | Path | None = None,
             report_dir: str | Path = "reports/latest", profile_performance: bool = False,
             text_column: str = "text", label_column: str = "label", batch_size: int = 32,
             progress: bool = True, options: LoadOptions | None = None) -> dict:
    data = load_test_set(test_file, text_column, label_column)
    # An unwritable report folder fails now, not after minutes of scoring.
    Path(report_dir).mkdir(parents=True, exist_ok=True)
    results = []
    for name in models:
        t0 = time.perf_counter()
        predictor = load_classifier(name, options)
        load_seconds = time.perf_counter() - t0
        probs, latencies = predict_all(predictor, data.texts, batch_size, progress,
                                       f"evaluate {name}")
        preds = [label_of(p) for p in probs]
        metrics = compute_metrics(data.labels, preds, probs,
                                  {"source": data.sources, "category": data.categories})
        prof, kind = None, "batch time / batch size"
        if profile_performance:
            prof = profile(predictor, data.texts, load_seconds)
            # single-text timings cover the first rows; the rest keep their batch timings
            latencies = prof["latencies_ms"] + latencies[len(prof["latencies_ms"]):]
            kind = "single text"
        results.append({"name": name, "metrics": metrics, "p_positive": probs,
                        "latencies_ms": latencies, "latency_kind": kind, "profile": prof,
                        "calibration": None, "setup": describe(predictor, batch_size)})
    return write_report(Path(report_dir), data.name, results, data.texts, data.labels,
                        data.categories, data.bad_rows)


def calibrate(model: str, val_file: str | Path, text_column: str = "text",
              label_column: str = "label", batch_size: int = 64, progress: bool = True) -> dict:
    """Fit a temperature on validation data and store it in the model's polarity.json."""
    folder = resolve_model(model)
    if not isinstance(folder, Path) or folder.name == "default_model":
        raise InputError(f"{model!r} is not a writable model folder: calibrate a model you "
                         "trained (copy the default with its files to recalibrate it)")
    card = read_card(folder)
    data = load_test_set(val_file, text_column, label_column)
    exits = None
    if card.extra.get("exits"):  # the final head alone, and each exit, raw
        from polarity.evaluate.exits import calibrate_exits, exit_log_odds

        logits, exits = exit_log_odds(folder, card, data.texts, batch_size)
        probs = apply_temperature(logits, card.temperature).tolist()
    else:  # the log-odds the contract divides by the card's temperature
        logits = load_classifier(folder).log_odds(data.texts, batch_size)
        probs = apply_temperature(logits, card.temperature).tolist()
    temperature = fit_temperature(logits, data.labels)

    def stats(p):
        conf = [max(x, 1 - x) for x in p]
        correct = [label_of(x) == g for x, g in zip(p, data.labels, strict=True)]
        return reliability(conf, correct)["ece"], nll(data.labels, p)

    before = stats(probs)
    after = stats(apply_temperature(logits, temperature).tolist())
    result = {"temperature": temperature, "previous_temperature": card.temperature,
              "ece_before": before[0], "ece_after": after[0], "nll_before": before[1],
              "nll_after": after[1], "val_file": str(val_file), "val_rows": len(data.texts)}
    calibrated = apply_temperature(logits, temperature)
    result["reference"] = reference([label_of(p) for p in calibrated],
                                    [max(p, 1 - p) for p in calibrated])
    card.temperature = temperature
    card.metrics["calibration"] = result
    if exits is not None:
        card.extra["exits"] = calibrate_exits(logits, exits, temperature, data.labels)
        result["exits"] = card.extra["exits"]
    card.save(folder)
    return result
