"""Batched autoregressive decoding of the XTTS GPT: the rows of every synthesis step together.

Each row carries its own speaker latents (``gpt_cond_latent``), text tokens, length bound,
sampling parameters and random draws. Rows are left-padded to a common length and padding is
masked out of attention; the GPT-2 core of XTTS has no position embedding of its own (its
``wpe`` returns zeros), XTTS adds learned text and mel position embeddings to the inputs, so
each row's text positions count from 0 at its start token and its mel positions from 0 at the
start-audio token, whatever the padding. Rows leave a batch (stop code or ``max_new_tokens``)
and new rows join it between steps (:meth:`GptDecoder.prefill`, then :meth:`GptDecoder.merge`).

Static shapes
    A :class:`DecodingBatch` holds every tensor a step reads or writes, allocated once for its
    rows and its length: the keys and values of every layer, the attention mask, each row's next
    code, mel position, sampling parameters, repetition-penalty set, random draws, and the codes
    and stream latents it has decoded. :meth:`GptDecoder.step` is tensor operations on those
    buffers only: no host synchronisation, no ``.item()`` or ``.tolist()``, no Python loop over
    rows, no shape that changes from one step to the next, the write position a device tensor.
    That is what capturing the step as a CUDA graph needs, one graph per bucket: lengths grow in
    :data:`LENGTH_BUCKET` steps and, on CUDA (``pad_rows``), rows in powers of two (padding rows
    are masked and ignored). The host learns which rows emitted the stop code at sync points
    (:meth:`GptDecoder.sync`, one small read): every step on a CPU, where tensors are host
    memory and reading is no synchronisation, and on CUDA every :data:`SYNC_EVERY_CUDA` steps or
    when a row is due to hand on a chunk or reaches its bound. A row that stopped between two
    sync points decodes a few codes past its stop, which are dropped.

The step runs the GPT-2 blocks of ``Xtts.gpt`` directly (their ``ln_1``, ``c_attn``,
``c_proj``, ``ln_2`` and ``mlp`` modules, attention through
``torch.nn.functional.scaled_dot_product_attention`` over the preallocated keys and values), the
same arithmetic as ``transformers``' GPT-2 forward pass, without its cache objects and masks
rebuilt per step.

Voice prefix cache: the prompt starts with the speaker's conditioning latents, whose keys and
values (causal attention) depend on nothing after them. The decoder keeps them per voice
(:class:`PrefixCache`), keyed by the key the latents carry down from the latent cache (the voice's
content, the latent arguments and the weights: no copy of the latents to the host to hash them),
and a prefill computes only the text and start-audio positions on top. Each row is laid out
``[pad, voice prefix, pad, text + start]``; the padding is masked, and positions do not move
because XTTS's positions are in the inputs.

What a row computes is what coqui's ``Xtts.inference`` computes through ``transformers``'
``generate`` for one request (checked by tests):

- the prompt is ``[gpt_cond_latent, text embeddings of [START] tokens [STOP], start-audio]``;
- the logits pass the processors ``generate`` builds from XTTS's arguments, in its order:
  repetition penalty (over every input id so far: ``generate``'s input ids for XTTS are the
  placeholder id 1 for each prompt position, the start-audio token and the codes generated, so
  id 1 and the start-audio token are penalised from the first step, as in coqui), then, when
  sampling, temperature, top-k, top-p;
- greedy rows take the arg-max; sampling rows draw by inverse transform of the row's
  probabilities, with uniform numbers drawn when the row joins from its own CPU
  ``torch.Generator`` (one per request, seeded by ``params.seed``: the same numbers on any
  device). A row's draws depend only on its seed and its own logits, never on its batch mates;
- ``length_penalty`` only scores beams (see :class:`~honora_tts.protocol.SamplingParams`).

The stream latents (``final_norm`` of the last hidden state of every step, what coqui's
``inference_stream`` vocodes) come with each code.

Fault seam: :attr:`GptDecoder.before_forward`, called before every GPT forward pass with the
phase (``"prefix"``, ``"prefill"`` or ``"step"``) and the rows of the pass, lets tests inject an
out-of-memory error (or any other) where a real one would come from.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from honora_tts.protocol import SamplingParams

if TYPE_CHECKING:
    import torch

    from honora_tts.cancellation import CancelToken

#: Lengths (key/value positions, and codes per row) are allocated in multiples of this.
LENGTH_BUCKET = 64
#: Steps between two reads of the stop codes on CUDA (on a CPU: every step).
SYNC_EVERY_CUDA = 8
#: Voices whose prefix keys and values a decoder keeps (each is ``layers x 2 x prefix x
#: model_dim`` numbers: 7.9 MB in fp32 for XTTS-v2's 30 layers and 32 conditioning latents).
PREFIX_CACHE_VOICES = 16


class DecodeRequestError(ValueError):
    """A decode request is malformed (empty text, wrong latent shape, bad sampling value);
    the message names the field and the accepted range."""


@dataclass
class DecodeRequest:
    """One utterance piece to decode.

    ``on_latents(latents, codes, final)``, when given, receives the row's new stream latents
    ``(n, model_dim)`` and codes every ``stream_chunk_size`` steps and at the end (``final``);
    it runs on the decoding thread, so it must only hand them on (e.g. to the vocoder lane).
    """

    gpt_cond_latent: torch.Tensor
    text_tokens: Sequence[int]
    max_new_tokens: int
    sampling: SamplingParams = field(default_factory=SamplingParams)
    #: The voice prefix's cache key (the latents' own: :attr:`~honora_tts.model.Latents.key`);
    #: None computes the prefix every time.
    prefix_key: str | None = None
    #: A generator to draw from (the pieces of one request share it); None: one seeded with
    #: ``sampling.seed``, or fresh.
    generator: torch.Generator | None = None
    stream_chunk_size: int = 0
    #: Codes of the first chunk (0: ``stream_chunk_size``): a small one gives early audio.
    first_chunk_size: int = 0
    on_latents: Callable[[torch.Tensor, list[int], bool], None] | None = None
    #: The request's cancellation: the scheduler takes the row out between two steps.
    cancel: CancelToken | None = None
    #: For logs and errors only.
    label: str = ""


@dataclass(frozen=True)
class DecodeResult:
    """A finished row: ``codes`` (the stop code included when it was emitted), the stream
    ``latents`` (one per code, ``(n, model_dim)``) and whether the row stopped by itself."""

    codes: list[int]
    latents: torch.Tensor
    stopped: bool


def is_out_of_memory(exc: BaseException) -> bool:
    """``torch.cuda.OutOfMemoryError`` or a ``RuntimeError`` saying "out of memory"."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _bucket(n: int, size: int = LENGTH_BUCKET) -> int:
    return max(size, -(-n // size) * size)


class Row:
    """One request's host-side state in a batch (its tensors live in the batch)."""

    def __init__(self, request: DecodeRequest, rest: torch.Tensor, draws: torch.Tensor):
        self.request = request
        #: ``(1, length, model_dim)``: the prompt after the voice prefix (text and start-audio
        #: embeddings).
        self.rest = rest
        #: ``(max_new_tokens,)`` uniforms for the row's sampling draws, one per code.
        self.draws = draws
        #: Codes decoded so far (the host's count: known without reading the device).
        self.count = 0
        #: Codes already handed to ``on_latents``.
        self.emitted = 0
        self.stopped = False
        self.cancelled = False
        #: Why the row must leave before it is done (its latent consumer failed).
        self.error: BaseException | None = None
        #: Set by the scheduler: what to do with the result.
        self.ticket: Any = None

    @property
    def done(self) -> bool:
        return self.stopped or self.count >= self.request.max_new_tokens

    @property
    def chunk_due(self) -> bool:
        """The row has codes to hand on (a full chunk, or its end) at the next sync."""
        if self.request.on_latents is None:
            return False
        size = self.request.stream_chunk_size
        if self.emitted == 0 and self.request.first_chunk_size:
            size = self.request.first_chunk_size
        return self.done or (size > 0 and self.count - self.emitted >= size)

    @property
    def wants_cancel(self) -> bool:
        token = self.request.cancel
        return self.cancelled or (token is not None and token.cancelled)


class DecodingBatch:
    """Rows decoding together and every tensor their steps use, for ``capacity`` rows (the
    first ``len(rows)`` are real, the others padding) and ``kv[...][0].shape[2]`` key/value
    positions, of which the first ``length`` are written."""

    def __init__(self, rows: list[Row], length: int, tensors: dict[str, Any]):
        self.rows = rows
        self.length = length
        self.kv: list[tuple[torch.Tensor, torch.Tensor]] = tensors.pop("kv")
        t = tensors
        #: ``(capacity, positions)`` bool: the key/value positions each row attends to.
        self.filled: torch.Tensor = t["filled"]
        #: ``(1,)``: where the next step writes its keys and values (``length`` on the device).
        self.write: torch.Tensor = t["write"]
        #: ``(capacity,)``: each row's next input code, and its codes so far (its mel position).
        self.tokens: torch.Tensor = t["tokens"]
        self.positions: torch.Tensor = t["positions"]
        #: ``(capacity,)``: 1 for real rows, 0 for padding (padding never advances).
        self.live: torch.Tensor = t["live"]
        #: ``(capacity, vocab)``: the ids the repetition penalty applies to, per row.
        self.seen: torch.Tensor = t["seen"]
        #: ``(capacity, 1)`` sampling parameters, and ``(capacity,)`` whether each row samples.
        self.temperature: torch.Tensor = t["temperature"]
        self.penalty: torch.Tensor = t["penalty"]
        self.top_k_index: torch.Tensor = t["top_k_index"]
        self.top_p_threshold: torch.Tensor = t["top_p_threshold"]
        self.do_sample: torch.Tensor = t["do_sample"]
        #: ``(capacity, steps)``: uniform draws, decoded codes; ``(capacity, steps, dim)``: the
        #: stream latents; ``(capacity,)``: the index of each row's first stop code, or -1.
        self.draws: torch.Tensor = t["draws"]
        self.codes: torch.Tensor = t["codes"]
        self.latents: torch.Tensor = t["latents"]
        self.stop_at: torch.Tensor = t["stop_at"]
        #: Steps since the host last read the stop codes.
        self.unsynced = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def capacity(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def positions_capacity(self) -> int:
        return int(self.filled.shape[1])

    def first_used(self, index: int) -> int:
        """The first key/value position row ``index`` attends to (host read: between steps)."""
        return int(self.filled[index].nonzero()[0, 0])


class PrefixCache:
    """The GPT's keys and values over each voice's conditioning latents (the prompt's fixed
    start), least recently used out first, keyed by the latents' own key."""

    def __init__(self, voices: int = PREFIX_CACHE_VOICES):
        self.voices = voices
        self._entries: OrderedDict[str, list[tuple[torch.Tensor, torch.Tensor]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return entry

    def put(self, key: str, kv: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.misses += 1
        if self.voices <= 0:
            return
        self._entries[key] = kv
        self._entries.move_to_end(key)
        while len(self._entries) > self.voices:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class GptDecoder:
    """Runs the XTTS GPT (``Xtts.gpt``) for many rows at once. Not thread-safe: one thread
    (the scheduler's) drives it."""

    def __init__(self, gpt: Any, device: str, *, fp16: bool = False,
                 prefix_voices: int = PREFIX_CACHE_VOICES, pad_rows: bool | None = None,
                 sync_every: int | None = None):
        import torch

        cuda = device.startswith("cuda")
        self.gpt = gpt
        self.device = device
        self.fp16 = fp16
        self.dtype = torch.float16 if fp16 else torch.float32
        self.blocks = list(gpt.gpt.h)
        self.ln_f = gpt.gpt.ln_f
        self.heads = int(gpt.heads)
        self.model_dim = int(gpt.model_dim)
        self.head_dim = self.model_dim // self.heads
        self.vocab = int(gpt.num_audio_tokens)
        self.start_token = int(gpt.start_audio_token)
        self.stop_token = int(gpt.stop_audio_token)
        self.max_new_tokens_limit = int(gpt.max_gen_mel_tokens)
        #: Rows allocated in powers of two (static shapes for CUDA graphs); on a CPU, as many
        #: as there are.
        self.pad_rows = cuda if pad_rows is None else pad_rows
        self.sync_every = (SYNC_EVERY_CUDA if cuda else 1) if sync_every is None else sync_every
        self.prefixes = PrefixCache(prefix_voices)
        #: Test seam: called as ``before_forward(phase, rows)`` before each forward pass.
        self.before_forward: Callable[[str, list[Row]], None] | None = None

    # ------------------------------------------------------------------ requests

    def check(self, request: DecodeRequest) -> None:
        """Raise :class:`DecodeRequestError` for a request this model cannot decode."""
        try:
            request.sampling.check()
        except ValueError as exc:
            raise DecodeRequestError(str(exc)) from None
        latent = request.gpt_cond_latent
        if latent.ndim != 3 or latent.shape[0] != 1 or latent.shape[2] != self.model_dim \
                or latent.shape[1] < 1:
            raise DecodeRequestError(
                f"gpt_cond_latent has shape {tuple(latent.shape)}; expected (1, N, "
                f"{self.model_dim})")
        if not request.text_tokens:
            raise DecodeRequestError("text_tokens is empty: there is nothing to speak")
        limit = int(self.gpt.max_text_tokens) - 2
        if limit > 0 and len(request.text_tokens) > limit:
            raise DecodeRequestError(f"{len(request.text_tokens)} text tokens; at most {limit}")
        if not 1 <= request.max_new_tokens <= self.max_new_tokens_limit:
            raise DecodeRequestError(f"max_new_tokens must lie in [1, "
                                     f"{self.max_new_tokens_limit}], got {request.max_new_tokens}")

    def row(self, request: DecodeRequest) -> Row:
        """A row ready to join a batch (its prompt embedded, its draws taken)."""
        import torch

        self.check(request)
        generator = request.generator
        if generator is None:
            generator = torch.Generator(device="cpu")
            if request.sampling.seed is None:
                generator.seed()
            else:
                generator.manual_seed(int(request.sampling.seed))
        draws = torch.rand(request.max_new_tokens, generator=generator)
        gpt = self.gpt
        with self._running():
            tokens = torch.tensor(list(request.text_tokens), dtype=torch.int32,
                                  device=self.device)[None]
            text = torch.nn.functional.pad(tokens, (0, 1), value=gpt.stop_text_token)
            text = torch.nn.functional.pad(text, (1, 0), value=gpt.start_text_token)
            text_emb = gpt.text_embedding(text) + gpt.text_pos_embedding(text)
            start = torch.full((1, 1), self.start_token, dtype=torch.long, device=self.device)
            start_emb = gpt.mel_embedding(start)
            start_emb = start_emb + gpt.mel_pos_embedding(start_emb)
            rest = torch.cat([text_emb.to(start_emb.dtype), start_emb], dim=1)
        return Row(request, rest, draws)

    # ------------------------------------------------------------------ the transformer

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        import torch

        if self.fp16:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        import torch

        with torch.inference_mode(), self._autocast():
            yield

    def _layers(self, hidden: torch.Tensor, kv: list[tuple[torch.Tensor, torch.Tensor]],
                index: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """The GPT-2 blocks over ``hidden`` ``(rows, new, dim)``: each layer writes the new
        keys and values at ``index`` (device positions) of its buffers and attends where
        ``allowed`` ``(rows, 1, new, positions)`` says; returns the final layer norm's output."""
        import torch.nn.functional as F

        rows, new, dim = hidden.shape
        shape = (rows, new, self.heads, self.head_dim)
        for block, (keys, values) in zip(self.blocks, kv, strict=True):
            attention = block.attn
            query, key, value = attention.c_attn(block.ln_1(hidden)).split(dim, dim=2)
            keys.index_copy_(2, index, key.view(shape).transpose(1, 2).to(keys.dtype))
            values.index_copy_(2, index, value.view(shape).transpose(1, 2).to(values.dtype))
            query = query.view(shape).transpose(1, 2).to(keys.dtype)
            out = F.scaled_dot_product_attention(query, keys, values, attn_mask=allowed)
            hidden = hidden + attention.c_proj(out.transpose(1, 2).reshape(rows, new, dim))
            hidden = hidden + block.mlp(block.ln_2(hidden))
        return self.ln_f(hidden)

    def _buffers(self, rows: int, positions: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        import torch

        shape = (rows, self.heads, positions, self.head_dim)
        return [(torch.zeros(shape, dtype=self.dtype, device=self.device),
                 torch.zeros(shape, dtype=self.dtype, device=self.device))
                for _ in self.blocks]

    def _prefix(self, row: Row) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The keys and values of ``row``'s voice prefix, per layer ``(1, heads, prefix,
        head_dim)``: from the cache, or computed (and kept)."""
        import torch

        key = row.request.prefix_key
        kv = self.prefixes.get(key) if key is not None else None
        if kv is None:
            if self.before_forward is not None:
                self.before_forward("prefix", [row])
            latent = row.request.gpt_cond_latent.to(self.device)
            size = int(latent.shape[1])
            kv = self._buffers(1, size)
            index = torch.arange(size, device=self.device)
            causal = torch.ones(size, size, dtype=torch.bool, device=self.device).tril()
            self._layers(latent, kv, index, causal[None, None])
            if key is not None:
                self.prefixes.put(key, kv)
        return kv

    # ------------------------------------------------------------------ batches

    def _capacity(self, rows: int) -> int:
        return 1 << max(0, rows - 1).bit_length() if self.pad_rows else rows

    def _allocate(self, rows: list[Row], positions: int, steps: int) -> dict[str, Any]:
        """Every tensor of a batch of ``rows`` (their sampling parameters and draws filled in;
        padding rows attend to position 0 only, so that their attention is defined)."""
        import torch

        capacity = self._capacity(len(rows))
        device = self.device
        real = len(rows)

        def column(values: Sequence[float], dtype: torch.dtype, pad: float) -> torch.Tensor:
            full = [*values, *[pad] * (capacity - real)]
            return torch.tensor(full, dtype=dtype, device=device)[:, None]

        sampling = [row.request.sampling for row in rows]
        top_k = [min(s.top_k, self.vocab) - 1 if s.top_k > 0 else self.vocab - 1
                 for s in sampling]
        draws = torch.zeros(capacity, steps)
        for index, row in enumerate(rows):
            draws[index, :row.draws.shape[0]] = row.draws
        filled = torch.zeros(capacity, positions, dtype=torch.bool, device=device)
        filled[real:, 0] = True
        return {
            "kv": self._buffers(capacity, positions),
            "filled": filled,
            "write": torch.zeros(1, dtype=torch.long, device=device),
            "tokens": torch.zeros(capacity, dtype=torch.long, device=device),
            "positions": torch.zeros(capacity, dtype=torch.long, device=device),
            "live": column([1] * real, torch.long, 0)[:, 0],
            "seen": torch.zeros(capacity, self.vocab, dtype=torch.bool, device=device),
            "temperature": column([s.temperature for s in sampling], torch.float32, 1.0),
            "penalty": column([s.repetition_penalty for s in sampling], torch.float32, 1.0),
            "top_k_index": column(top_k, torch.long, self.vocab - 1),
            "top_p_threshold": column([1.0 - s.top_p if s.top_p < 1.0 else -1.0
                                       for s in sampling], torch.float32, -1.0),
            "do_sample": column([s.do_sample for s in sampling], torch.bool, False)[:, 0],
            "draws": draws.to(device),
            "codes": torch.zeros(capacity, steps, dtype=torch.long, device=device),
            "latents": torch.zeros(capacity, steps, self.model_dim, device=device),
            "stop_at": torch.full((capacity,), -1, dtype=torch.long, device=device),
        }

    def prefill(self, rows: list[Row]) -> DecodingBatch:
        """Run the prompts of ``rows`` on their voice prefixes (each row laid out as ``[pad,
        prefix, pad, text + start]``) and pick each row's first code. Rows that finish at once
        (stop code, or ``max_new_tokens`` of 1) stay in the batch, done once synced; the caller
        takes them out."""
        import torch

        with self._running():
            prefixes = [self._prefix(row) for row in rows]
            sizes = [kv[0][0].shape[2] for kv in prefixes]
            prefix, rest = max(sizes), max(row.rest.shape[1] for row in rows)
            longest = max(row.request.max_new_tokens for row in rows)
            batch = DecodingBatch(list(rows), prefix + rest, self._allocate(
                rows, _bucket(prefix + rest + longest), _bucket(longest)))
            for layer, (keys, values) in enumerate(batch.kv):
                for index, (row_kv, size) in enumerate(zip(prefixes, sizes, strict=True)):
                    keys[index, :, prefix - size:prefix] = row_kv[layer][0][0]
                    values[index, :, prefix - size:prefix] = row_kv[layer][1][0]
            embeds = torch.zeros(batch.capacity, rest, self.model_dim, device=self.device,
                                 dtype=rows[0].rest.dtype)
            for index, (row, size) in enumerate(zip(rows, sizes, strict=True)):
                length = row.rest.shape[1]
                embeds[index, rest - length:] = row.rest[0]
                batch.filled[index, prefix - size:prefix] = True
                batch.filled[index, prefix + rest - length:prefix + rest] = True
            new = torch.arange(prefix, prefix + rest, device=self.device)
            columns = torch.arange(batch.positions_capacity, device=self.device)
            causal = columns[None, :] <= new[:, None]
            allowed = batch.filled[:, None, None, :] & causal[None, None]
            if self.before_forward is not None:
                self.before_forward("prefill", rows)
            hidden = self._layers(embeds, batch.kv, new, allowed)
            batch.seen[:, 1] = True
            batch.seen[:, self.start_token] = True
            self._advance(batch, hidden[:, -1])
            batch.write.fill_(prefix + rest)
        for row in rows:
            row.count = 1
        return batch

    def merge(self, first: DecodingBatch, second: DecodingBatch) -> DecodingBatch:
        """Both batches' rows in one (the shorter's positions left-padded)."""
        return self._gather([(first, list(range(len(first)))),
                             (second, list(range(len(second))))])

    def select(self, batch: DecodingBatch, keep: list[int]) -> DecodingBatch:
        """A batch of the rows at ``keep``, with the padding no remaining row needs dropped."""
        if len(keep) == len(batch.rows) and batch.capacity == self._capacity(len(keep)):
            return batch
        return self._gather([(batch, keep)])

    def split(self, batch: DecodingBatch) -> tuple[DecodingBatch, DecodingBatch]:
        """Two halves (for a retry after a failure of the whole batch)."""
        half = len(batch.rows) // 2
        return (self.select(batch, list(range(half))),
                self.select(batch, list(range(half, len(batch.rows)))))

    def _gather(self, parts: list[tuple[DecodingBatch, list[int]]]) -> DecodingBatch:
        """A new batch of the rows ``parts`` name, each part's written positions right-aligned
        to the longest (between steps; copies every tensor once)."""
        import torch

        rows = [part.rows[i] for part, keep in parts for i in keep]
        if not rows:
            empty = self._allocate([], 1, 1)
            return DecodingBatch([], 0, empty)
        starts = [min((part.first_used(i) for i in keep), default=part.length)
                  for part, keep in parts]
        length = max(part.length - start for (part, _), start in zip(parts, starts, strict=True))
        remaining = max(row.request.max_new_tokens - row.count for row in rows)
        steps = max(part.codes.shape[1] for part, _ in parts)
        batch = DecodingBatch(rows, length, self._allocate(rows, _bucket(length + remaining),
                                                           steps))
        at = 0
        for (part, keep), start in zip(parts, starts, strict=True):
            if not keep:
                continue
            source = torch.tensor(keep, device=self.device)
            target = slice(at, at + len(keep))
            used = part.length - start
            offset = length - used
            for (keys, values), (old_keys, old_values) in zip(batch.kv, part.kv, strict=True):
                keys[target, :, offset:length] = old_keys.index_select(0, source)[
                    :, :, start:part.length]
                values[target, :, offset:length] = old_values.index_select(0, source)[
                    :, :, start:part.length]
            batch.filled[target, offset:length] = part.filled.index_select(0, source)[
                :, start:part.length]
            width = part.codes.shape[1]
            for name in ("tokens", "positions", "seen", "temperature", "penalty", "top_k_index",
                         "top_p_threshold", "do_sample", "stop_at"):
                getattr(batch, name)[target] = getattr(part, name).index_select(0, source)
            for name in ("codes", "latents"):
                getattr(batch, name)[target, :width] = getattr(part, name).index_select(0, source)
            at += len(keep)
        batch.write.fill_(length)
        batch.unsynced = max(part.unsynced for part, _ in parts)
        return batch

    # ------------------------------------------------------------------ decoding

    def step(self, batch: DecodingBatch) -> None:
        """One decoding step for every row of ``batch`` (none of them done): tensor operations
        on the batch's buffers only (see "Static shapes" in the module docstring). On an
        exception the step can be retried: it rewrites the same position with the same values,
        and commits codes, positions and the penalty set only once everything is computed."""
        gpt = self.gpt
        with self._running():
            embeds = (gpt.mel_embedding(batch.tokens) + gpt.mel_pos_embedding.emb(
                batch.positions))[:, None]
            filled = batch.filled.index_fill(1, batch.write, True)
            if self.before_forward is not None:
                self.before_forward("step", batch.rows)
            hidden = self._layers(embeds, batch.kv, batch.write, filled[:, None, None, :])
            batch.filled.copy_(filled)
            self._advance(batch, hidden[:, -1])
            batch.write.add_(1)
        batch.length += 1
        batch.unsynced += 1
        for row in batch.rows:
            row.count += 1

    def _advance(self, batch: DecodingBatch, hidden: torch.Tensor) -> None:
        """Pick each row's code from ``hidden`` ``(capacity, dim)`` and record it with its stream
        latent (in place; the last thing a prefill or step does)."""
        import torch

        logits = self.gpt.gpt_inference.lm_head(hidden)
        chosen = self._choose(batch, logits)
        latent = self.gpt.final_norm(hidden).float()
        index = batch.positions[:, None]
        stopping = (chosen == self.stop_token) & (batch.stop_at < 0)
        batch.codes.scatter_(1, index, chosen[:, None])
        batch.latents.scatter_(1, index[:, :, None].expand(-1, -1, self.model_dim),
                               latent[:, None])
        batch.seen.scatter_(1, chosen[:, None], True)
        batch.stop_at.copy_(torch.where(stopping, batch.positions, batch.stop_at))
        batch.tokens.copy_(chosen)
        batch.positions.add_(batch.live)

    def _choose(self, batch: DecodingBatch, logits: torch.Tensor) -> torch.Tensor:
        """Each row's code from ``logits`` ``(capacity, vocab)``: repetition penalty, then the
        arg-max, or temperature, top-k and top-p as ``generate`` applies them and one draw by
        inverse transform."""
        import torch

        scores = logits.float()
        penalized = torch.where(scores < 0, scores * batch.penalty, scores / batch.penalty)
        scores = torch.where(batch.seen, penalized, scores)
        greedy = scores.argmax(dim=-1)
        scores = scores / batch.temperature
        kth = scores.sort(dim=-1, descending=True).values.gather(1, batch.top_k_index)
        scores = scores.masked_fill(scores < kth, -math.inf)
        ascending, order = scores.sort(dim=-1)
        cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= batch.top_p_threshold
        remove[:, -1] = False
        scores = scores.masked_fill(remove.scatter(1, order, remove), -math.inf)
        cdf = scores.softmax(dim=-1).cumsum(dim=-1)
        draw = batch.draws.gather(1, batch.positions[:, None])
        sampled = torch.searchsorted(cdf, draw * cdf[:, -1:], right=True).squeeze(1)
        return torch.where(batch.do_sample, sampled.clamp(max=self.vocab - 1), greedy)

    # ------------------------------------------------------------------ the host's reads

    def needs_sync(self, batch: DecodingBatch) -> bool:
        """Whether the host must read the stop codes now (see :meth:`sync`)."""
        return batch.unsynced >= self.sync_every or any(
            row.count >= row.request.max_new_tokens or row.chunk_due for row in batch.rows)

    def sync(self, batch: DecodingBatch) -> None:
        """Read which rows emitted the stop code (one ``(rows,)`` transfer): such a row is
        stopped, and its codes end at the stop code (what it decoded after is dropped)."""
        stops = batch.stop_at[:len(batch.rows)].tolist()
        for row, stop in zip(batch.rows, stops, strict=True):
            if stop >= 0 and not row.stopped:
                row.stopped = True
                row.count = min(row.count, stop + 1)
        batch.unsynced = 0

    def emit(self, batch: DecodingBatch, index: int) -> None:
        """Hand row ``index``'s new stream latents to its ``on_latents`` when a chunk is full or
        the row is done (right after :meth:`sync`)."""
        row = batch.rows[index]
        if not row.chunk_due:
            return
        start, stop = row.emitted, row.count
        latents = batch.latents[index, start:stop].clone()
        codes = batch.codes[index, start:stop].tolist()
        row.emitted = stop
        assert row.request.on_latents is not None
        row.request.on_latents(latents, codes, row.done)

    def result(self, batch: DecodingBatch, index: int) -> DecodeResult:
        """Row ``index``'s codes and stream latents (once it is done and synced)."""
        row = batch.rows[index]
        return DecodeResult(codes=batch.codes[index, :row.count].tolist(),
                            latents=batch.latents[index, :row.count].clone(),
                            stopped=row.stopped)


def decode_alone(decoder: GptDecoder, request: DecodeRequest) -> DecodeResult:
    """Decode one request on its own (a batch of one), start to end, as the scheduler does."""
    row = decoder.row(request)
    batch = decoder.prefill([row])
    decoder.sync(batch)
    decoder.emit(batch, 0)
    while not row.done:
        decoder.step(batch)
        if decoder.needs_sync(batch):
            decoder.sync(batch)
            decoder.emit(batch, 0)
    return decoder.result(batch, 0)
