"""The grounding verifier: examples from JSQuAD (data), training (fit), AUROC (metrics)."""
