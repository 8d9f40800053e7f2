"""SDXS Live, the application: the command line (cli/), the Qt window (ui/) and the frame pipeline (live/).

Imports point one way: cli -> ui -> live -> models. Qt is imported only in ui/.
"""
