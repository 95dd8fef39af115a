"""Training data, dataset building, QLoRA training, evaluation, the adapter registry and the scheduler."""
