"""Fine-tuning: a typed config, a resumable training loop and the per-tier tasks."""
