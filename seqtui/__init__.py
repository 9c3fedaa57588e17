"""seqtui: character-level sequence models in the terminal (n-grams, RNN/GRU/LSTM on CPU)."""

__version__ = "0.1.0"
