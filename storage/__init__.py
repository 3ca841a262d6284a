"""Where studies live: storage URL resolution, engine options, heartbeats, artifact store."""
