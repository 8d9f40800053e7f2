"""What the window shows and sends: the output and feed views, the Output menu (MJPEG, virtual camera, NDI),
the status bar's log line, numpy <-> QImage."""
