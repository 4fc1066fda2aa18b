"""The Hydra configs, shipped inside the package: Hydra finds them at `pkg://audio_thinker.configs`."""
