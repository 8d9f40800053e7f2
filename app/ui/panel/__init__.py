"""The control panel: the source picker, prompt and style, adapters and LoRAs with their strengths, steadying,
the model pickers and the shared widgets (seed box, slider rows)."""
