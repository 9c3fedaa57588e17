"""What learns and predicts: the n-gram baseline, the recurrent model, optimizers, generation."""
