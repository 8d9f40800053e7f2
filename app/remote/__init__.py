"""The engine on another machine: serve-engine (server.py) runs a LiveLoop behind WebRTC, RemoteEngine (client.py)
uses it from stream, the window or a test, and the page (page/) from a browser or a tablet. docs/remote.md."""
