"""Data side of Shap-CA: corpora, contexts, POS tags, the processor and metrics."""
