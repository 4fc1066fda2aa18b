"""`audio-thinker export --push-to-hub REPO`: upload an exported folder with `huggingface_hub`, failures explained.

The repository is checked before anything is exported (an invalid id, or `HF_HUB_OFFLINE=1`, fails in a second, not
after a 7B merge); the upload itself is `HfApi.create_repo` + `HfApi.upload_folder`, whose errors (no network, no
token, no write access) come back naming the repository and the folder that is ready to upload by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from audio_thinker.models.sources import hub_offline

log = logging.getLogger(__name__)


class PushError(RuntimeError):
    """The upload to the Hub did not happen; the message names the repository and what to do."""


def check_push_target(repo: str) -> None:
    """Fail before any work when `repo` cannot be pushed to: not an `owner/name` id, or the Hub is switched off."""
    try:
        validate_repo_id(repo)
    except HFValidationError as err:
        raise PushError(f"--push-to-hub {repo!r}: not a Hub repository id ({err}); use owner/name") from None
    if hub_offline():
        raise PushError(
            f"--push-to-hub {repo}: HF_HUB_OFFLINE=1 forbids Hub requests, so nothing can be pushed to {repo}; "
            "unset it where there is a network (and log in: `hf auth login`, or set HF_TOKEN), or export without "
            "--push-to-hub and upload the folder later (`hf upload " + repo + " <folder>`)"
        )


def push_to_hub(folder: str | Path, repo: str, private: bool = False, message: str | None = None) -> str:
    """Create `repo` if needed and upload `folder` to it; return the commit's URL."""
    from huggingface_hub import HfApi

    check_push_target(repo)
    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo, folder_path=str(folder), commit_message=message or "Upload model trained with audio-thinker"
        )
    except Exception as err:  # noqa: BLE001  (the Hub client raises many types: network, HTTP, auth, offline)
        raise PushError(
            f"--push-to-hub {repo}: the upload failed ({type(err).__name__}: {err}). Check the network, that you are "
            f"logged in with write access to {repo} (`hf auth login` or HF_TOKEN); {folder} is complete and can be "
            f"uploaded later with `hf upload {repo} {folder}`"
        ) from err
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/{repo}"
    log.info("pushed %s to %s", folder, url)
    return url
