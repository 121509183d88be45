"""Tasks: where the training data come from and how a generator is judged (``task = "synthetic" | "text"``)."""
