"""Training: the shared MLE pretraining stage and the adversarial variants built on it."""
