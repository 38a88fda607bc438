"""Operations commands: serve, keys, batch."""

from __future__ import annotations

import json
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


def _add_serve(sub) -> None:
    from polarity.serve.settings import Settings

    p = sub.add_parser("serve", help="serve the HTTP API",
                       description="Serve /api/v1/analyze, /api/v1/analyze/batch, "
                       "/api/v1/health and /metrics. Every service setting is a flag; flags "
                       "override environment variables, which override "
                       "configs/deployment_config.yaml.")
    p.add_argument("--config", type=Path, help="deployment YAML (default: "
                   "configs/deployment_config.yaml when present)")
    p.add_argument("--model", dest="served_models", action="append", metavar="NAME_OR_PATH",
                   help=model_help("; NAME=FOLDER names it; repeat --model to serve several "
                                   "side by side (a request picks one with \"model\"; the "
                                   "first is the default)"))
    p.add_argument("--no-auth", dest="field:auth_disabled", action="store_const",
                   const="true", help="same as --auth-disabled true (local experiments only)")
    p.add_argument("--engine", choices=["uvicorn", "ray"], default="uvicorn",
                   help="uvicorn (default) or a Ray Serve deployment")
    p.add_argument("--replicas", type=positive_int, default=2,
                   help="Ray Serve replicas (--engine ray)")
    p.add_argument("--ray-address", help="Ray cluster to deploy to; default: a local Ray")
    add_model_flags(p, Settings)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from polarity.predictor import check_model
    from polarity.serve.run import serve
    from polarity.serve.settings import Settings, load_settings

    overrides = model_flag_values(args, Settings)
    if args.served_models and len(args.served_models) == 1:
        overrides["model_path"] = args.served_models[0]
    elif args.served_models:
        overrides["models"] = args.served_models
    settings = load_settings(args.config, **overrides)
    # The service loads the models in the background; a name that cannot resolve or a broken
    # folder fails here, before a server starts that could never become ready.
    for _, target in settings.served:
        check_model(target)
    if args.engine == "ray":
        from polarity.serve.ray_serve import serve_on_ray

        serve_on_ray(settings, args.replicas, args.ray_address)
        return 0
    serve(settings)
    return 0


#: The keys file `make serve` writes and serves with: the keys commands' default too.
KEYS_FILE = Path(".polarity/api_keys.txt")


def _add_keys(sub) -> None:
    p = sub.add_parser("keys", help="manage API keys")
    keys_sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    file_help = f"keys file the service reads (API_KEYS_FILE); default {KEYS_FILE}, make serve's"
    create = keys_sub.add_parser("create", help="print a new API key and store its hash")
    create.add_argument("--file", type=Path, default=KEYS_FILE, help=file_help)
    create.add_argument("--name", default="", help="a label stored beside the hash, unique in "
                        "the file (revoke takes it)")
    create.set_defaults(func=cmd_keys_create)
    listed = keys_sub.add_parser("list", help="the keys of a keys file: id and name")
    listed.add_argument("--file", type=Path, default=KEYS_FILE, help=file_help)
    listed.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="remove one key; a running service stops "
                                 "accepting it within a second")
    revoke.add_argument("which", help="the key's id (from `keys list`) or its name")
    revoke.add_argument("--file", type=Path, default=KEYS_FILE, help=file_help)
    revoke.set_defaults(func=cmd_keys_revoke)


def cmd_keys_create(args) -> int:
    from polarity.serve.security import create_key, key_id, read_keys

    name = args.name.strip()
    if name and args.file.is_file():
        taken = [key_id(d) for d, n in read_keys(args.file) if n == name]
        if taken:
            raise PolarityError(f"a key named {name!r} is already in {args.file} (id "
                                f"{taken[0]}): choose another --name, or revoke it first")
    key = create_key(args.file, name)
    print(key)
    print(f"stored its SHA-256 hash in {args.file}; serve with API_KEYS_FILE={args.file}",
          file=sys.stderr)
    return 0


def cmd_keys_list(args) -> int:
    from polarity.serve.security import key_id, read_key_hashes, read_keys

    read_key_hashes(args.file)  # a clear error for a missing or malformed file
    for digest, name in read_keys(args.file):
        print(f"{key_id(digest)}  {name}".rstrip())
    return 0


def cmd_keys_revoke(args) -> int:
    from polarity.serve.security import key_id, read_key_hashes, read_keys, revoke_keys

    read_key_hashes(args.file)  # a clear error for a missing or malformed file
    # Exactly one key goes: an id, or a name only one key carries (files written before
    # names were unique may repeat one; those are revoked by id).
    matches = [(key_id(d), n) for d, n in read_keys(args.file)
               if key_id(d) == args.which or n == args.which]
    if len(matches) > 1:
        ids = ", ".join(kid for kid, _ in matches)
        raise PolarityError(f"{len(matches)} keys in {args.file} are named {args.which!r} "
                            f"(ids {ids}): revoke one by its id")
    which = matches[0][0] if matches else args.which  # none: revoke_keys says so
    for kid, name in revoke_keys(args.file, which):
        print(f"revoked {kid}  {name}".rstrip(), file=sys.stderr)
    return 0


def _add_batch(sub) -> None:
    p = sub.add_parser(
        "batch", help="score a large file or folder into Parquet parts, resumably",
        description="Streams CSV/TSV/JSONL/Parquet input in shards; each shard becomes one "
        "Parquet part (input columns + row_id, predicted_sentiment, confidence, scores). "
        "Rerun the same command after a crash: finished parts are skipped (it says how many). "
        "A rerun over an input that changed is refused unless --restart. Bad rows go to "
        "OUTPUT/_errors.jsonl with the reason.")
    p.add_argument("--model", default="default", help=model_help(" (default: default)"))
    p.add_argument("--input", required=True, type=Path, help="a file or a folder of files")
    p.add_argument("--output", required=True, type=Path, help="output folder")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--ray-address", help="Ray cluster address; default: start Ray locally")
    p.add_argument("--num-actors", type=positive_int, default=2, help="Ray actors (model copies)")
    p.add_argument("--threads-per-actor", type=positive_int, default=1)
    p.add_argument("--batch-size", type=positive_int, default=64)
    add_load_flags(p)
    p.add_argument("--shard-rows", type=positive_int, default=None,
                   help="rows per Parquet part, the unit of resumption (default: sized to the "
                   "input: an eighth of its rows, 50 to 10,000 per part; a rerun keeps its "
                   "first run's size)")
    p.add_argument("--restart", action="store_true",
                   help="delete the earlier run's parts in --output and score from the start "
                   "(a rerun over an input whose content changed is refused without it)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    from polarity.batch import BatchOptions, run_batch

    options = BatchOptions(
        model=args.model, input=args.input, output=args.output, engine=args.engine,
        text_column=args.text_column, batch_size=args.batch_size, shard_rows=args.shard_rows,
        restart=args.restart,
        ray_address=args.ray_address, num_actors=args.num_actors,
        threads_per_actor=args.threads_per_actor, progress=args.progress,
        load=load_options(args))
    summary = run_batch(options)
    print(json.dumps(summary, indent=2))
    if summary["error_rows"] and not summary["scored_rows"]:
        errors = Path(summary["output"]) / "_errors.jsonl"
        with open(errors, encoding="utf-8") as f:
            first = json.loads(f.readline())["error"]
        raise PolarityError(f"no row could be scored: all {summary['error_rows']} are in "
                            f"{errors}, the first because {first} (see --text-column)")
    return 0
