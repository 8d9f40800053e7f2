"""The session and its bindings: widgets bound to app.live.session.Session, the saved settings, and the links
that carry it to the worker (models, adapters, LoRAs) and from OSC and MIDI."""
