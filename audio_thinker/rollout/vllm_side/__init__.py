"""Code that runs inside the vLLM server's own environment (its own torch, no audio_thinker): this directory goes
on the server's PYTHONPATH, so its modules import there under their bare names (`weight_stream_worker`)."""
