"""Files copied into an exported reward model so plain transformers can load it (`rm export`)."""
