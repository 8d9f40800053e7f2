"""Dialogs and their processes: the Train dialog and its trainer process, the screen region picker."""
