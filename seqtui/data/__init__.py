"""Text in, token ids out: corpora, extraction, encoding, vocabularies, batches, statistics."""
