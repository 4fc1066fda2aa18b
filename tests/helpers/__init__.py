"""What several test modules share: config composition, runs in subprocesses, and the stand-ins (reward terms,
callbacks, a checkpoint plugin, datasets) that test configs name by `_target_`."""
