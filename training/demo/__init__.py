"""The builder of the built-in demo model (assets/models/demo): data, base, adapter, evaluation, card."""
