"""Rolling a new worker image out to a RunPod (or localpod) endpoint, watched until every worker
runs the new build; rolling it back; building the image.

- :mod:`.image_ref`: image references, and the refusals (``:latest``, no tag, malformed).
- :mod:`.repository`: facts of this git checkout (commits, dirty tree).
- :mod:`.watch`: the platform's view (``/workers``, ``/releases``) against honora's census.
- :mod:`.traffic`: a steady load of synthesis requests, recorded per answering worker.
- :mod:`.report`: the rollout report (JSON and timeline plot under ``artifacts/rollout/``).
- :mod:`.engine`: :func:`~.engine.rollout` and :func:`~.engine.rollback`.
- :mod:`.build`: ``docker build`` with ``GIT_SHA``/``BUILD_TIME`` and a tag from the commit.
- :mod:`.commands`: ``honora-tts rollout``, ``rollback`` and ``build``.
"""
