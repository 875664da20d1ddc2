"""What :class:`~honora_tts.client.EndpointClient` offers, one module per resource, each
composed of the job runner, the audio fetcher, the voice uploader and the response reader:
:mod:`.synthesis` (one text, or a stream), :mod:`.batch` (many sections), :mod:`.health` (one
health job) and :mod:`.census` (which builds answer)."""
