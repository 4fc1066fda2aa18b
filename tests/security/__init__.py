"""The security section: every attack on audio-thinker we know of, as a test that fails if it works again.

- `test_run_config`: a run folder's `.hydra/config.yaml` naming code (`_target_`) for `export` and `eval
  eval.ckpt_path=...` to run: directly under `model`, through an interpolation (`model.lora: ${evil}`), through
  `${oc.decode:...}`, through an escaped interpolation, or anywhere else in the tree; `torch.load` of a pickle,
  `builtins.open`, `os.makedirs`, `pathlib.Path.touch`, `os.system`, `builtins.exec`; attention kernels from the
  Hub and `trust_remote_code` (round one's cases, moved here from tests/integration/test_export.py).
- `test_checkpoints`: bytes changed inside a checkpoint (refused on export, eval and resume; `ckpt_path=last`
  passes over it), NaN weights on export, and a checkpoint pickling code (round one).
- `test_judge_secrets`: credentials in a judge URL kept out of logs, errors and logged hyperparameters.
- `test_data_rows`: one huge manifest row (a 50 MB question) costs bounded memory: refused unread by `data check
  --model` and when training loads it (skipped and counted, or stopping the run naming file:line); with the size
  limits off, a prompt longer than the context is refused on its characters before any tokenizer sees it.

Round one's cases that stay beside the code they test: checkpoints load with `weights_only=True`
(tests/unit/callbacks/test_resume.py::test_loading_defaults_to_weights_only); an API key given as `api_key_env`
is refused without being echoed, and a key echoed back by a server is never logged
(tests/unit/rewards/judge/test_endpoint.py: test_a_key_given_as_api_key_env_is_refused_without_echoing_it,
test_http_500_then_success_without_leaking_the_key).
"""
