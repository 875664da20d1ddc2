"""Batched autoregressive decoding of the XTTS GPT: several requests step together.

Each row carries its own speaker latents (``gpt_cond_latent``), text tokens, length bound,
sampling parameters and random generator. Rows are left-padded to a common length and padding
is masked out of attention; the GPT-2 core of XTTS has no position embedding of its own (its
``wpe`` returns zeros), XTTS adds learned text and mel position embeddings to the inputs, so
each row's text positions count from 0 at its start token and its mel positions from 0 at the
start-audio token, whatever the padding. The key/value cache is one tensor pair per layer for
the whole batch; rows leave it (stop token or ``max_new_tokens``) and new rows join it between
steps (:meth:`BatchedGptDecoder.prefill` then :meth:`DecodingBatch.merge`).

Voice prefix cache: the prompt starts with the speaker's conditioning latents, whose keys and
values (causal attention) depend on nothing after them. The decoder keeps them per voice
(:class:`PrefixCache`, keyed by the latents' content) and a prefill computes only the text and
start-audio positions on top: a row of a voice seen before costs the text, not the 32
conditioning positions again. Each row is laid out ``[pad, voice prefix, pad, text + start]``;
the padding is masked, and positions do not move because XTTS's positions are in the inputs.

What a row computes is what coqui's ``Xtts.inference`` computes through ``transformers``'
``generate`` for one request (checked by tests):

- the prompt is ``[gpt_cond_latent, text embeddings of [START] tokens [STOP], start-audio]``;
- the logits pass the processors ``generate`` builds from XTTS's arguments, in its order:
  repetition penalty (over every input id so far: ``generate``'s input ids for XTTS are the
  placeholder id 1 for each prompt position, the start-audio token and the codes generated, so
  id 1 and the start-audio token are penalised from the first step, as in coqui), then, when
  sampling, temperature, top-k, top-p;
- greedy rows take the arg-max; sampling rows draw from their own ``torch.Generator`` (on the
  CPU, so a seed draws the same numbers on any device) by inverse transform of the row's
  probabilities. A row's draws depend only on its seed and its own logits, never on its batch
  mates;
- ``length_penalty`` only scores beams; XTTS decodes with one beam, where it has no effect
  (in ``generate`` as here). It is accepted and validated, not used.

The stream latents (``final_norm`` of the last hidden state of every step, what coqui's
``inference_stream`` vocodes) come with each code.

Fault seam: :attr:`BatchedGptDecoder.before_forward`, called before every GPT forward pass with
the phase (``"prefill"`` or ``"step"``) and the rows of the pass, lets tests inject an
out-of-memory error (or any other) where a real one would come from.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class DecodeRequestError(ValueError):
    """A decode request is malformed (empty text, wrong latent shape, bad sampling value);
    the message names the field and the accepted range."""


@dataclass(frozen=True)
class SamplingParams:
    """One row's sampling parameters, as XTTS hands them to ``generate``."""

    temperature: float = 0.75
    top_p: float = 0.85
    top_k: int = 50
    repetition_penalty: float = 5.0
    #: Beam scoring only: no effect with XTTS's single beam (see the module docstring).
    length_penalty: float = 1.0
    do_sample: bool = True

    def check(self) -> None:
        """Raise :class:`DecodeRequestError` on values ``generate`` would refuse."""
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise DecodeRequestError(f"temperature must be a positive number, got "
                                     f"{self.temperature}")
        if not 0.0 <= self.top_p <= 1.0:
            raise DecodeRequestError(f"top_p must lie in [0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise DecodeRequestError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not (self.repetition_penalty > 0 and math.isfinite(self.repetition_penalty)):
            raise DecodeRequestError(f"repetition_penalty must be a positive number, got "
                                     f"{self.repetition_penalty}")
        if not math.isfinite(self.length_penalty):
            raise DecodeRequestError(f"length_penalty must be finite, got {self.length_penalty}")


@dataclass
class DecodeRequest:
    """One utterance piece to decode.

    ``on_latents(latents, codes, final)``, when given, receives the row's new stream latents
    ``(n, model_dim)`` and codes every ``stream_chunk_size`` steps and at the end (``final``);
    it runs on the decoding thread, so it must only hand them on (e.g. put them in a queue).
    """

    gpt_cond_latent: torch.Tensor
    text_tokens: Sequence[int]
    max_new_tokens: int
    sampling: SamplingParams = field(default_factory=SamplingParams)
    #: Seeds the row's generator; ``None`` draws a fresh seed.
    seed: int | None = None
    #: A generator to continue instead of seeding one (pieces of one request share it).
    generator: torch.Generator | None = None
    stream_chunk_size: int = 0
    #: Codes of the first chunk (0: ``stream_chunk_size``): a small one gives early audio.
    first_chunk_size: int = 0
    on_latents: Callable[[torch.Tensor, list[int], bool], None] | None = None
    #: For logs and errors only.
    label: str = ""


@dataclass(frozen=True)
class DecodeResult:
    """A finished row: ``codes`` (the stop token included when it was emitted), the stream
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


class Row:
    """One request's decoding state inside a batch."""

    def __init__(self, request: DecodeRequest, rest: torch.Tensor, generator: torch.Generator):
        self.request = request
        #: ``(1, length, model_dim)``: the prompt after the voice prefix (text and start-audio
        #: embeddings).
        self.rest = rest
        self.generator = generator
        self.codes: list[int] = []
        self.latents: list[torch.Tensor] = []
        self.emitted = 0
        self.stopped = False
        self.cancelled = False
        #: Why the row must leave before it is done (its latent consumer failed).
        self.error: BaseException | None = None
        #: Set by the scheduler: what to do with the result.
        self.ticket: Any = None

    @property
    def done(self) -> bool:
        return self.stopped or len(self.codes) >= self.request.max_new_tokens

    def result(self) -> DecodeResult:
        import torch

        latents = torch.cat(self.latents, dim=0) if self.latents else torch.zeros(0)
        return DecodeResult(codes=list(self.codes), latents=latents, stopped=self.stopped)

    def emit(self) -> None:
        """Hand new stream latents to ``on_latents`` when a chunk is full or the row is done."""
        request = self.request
        if request.on_latents is None:
            return
        pending = len(self.codes) - self.emitted
        size = request.stream_chunk_size
        if self.emitted == 0 and request.first_chunk_size:
            size = request.first_chunk_size
        if self.done or (size > 0 and pending >= size):
            import torch

            new = torch.cat(self.latents[self.emitted:], dim=0) if pending else None
            if new is not None or self.done:
                codes = self.codes[self.emitted:]
                self.emitted = len(self.codes)
                request.on_latents(new if new is not None else torch.zeros(0), codes, self.done)


#: Free positions a key/value buffer gets when it is (re)allocated; a step writes its new keys
#: and values in place instead of copying the whole cache as ``DynamicCache`` does.
KV_HEADROOM = 64


def _buffer(like: torch.Tensor, rows: int, length: int) -> torch.Tensor:
    import torch

    shape = (rows, like.shape[1], length + KV_HEADROOM, like.shape[3])
    return torch.zeros(shape, dtype=like.dtype, device=like.device)


def _kv_layer(buffers: tuple[torch.Tensor, torch.Tensor], length: int) -> Any:
    """A ``transformers`` cache layer over preallocated ``(keys, values)`` buffers holding
    ``length`` positions; :meth:`update` writes new positions in place (growing the buffers
    when full) and never touches the first ``length``."""
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        def __init__(self) -> None:
            super().__init__()
            self.buffers = buffers
            self.length = length
            self.dtype, self.device = buffers[0].dtype, buffers[0].device
            self.keys = buffers[0][:, :, :length]
            self.values = buffers[1][:, :, :length]
            self.is_initialized = True

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor,
                   cache_kwargs: dict[str, Any] | None = None) -> tuple[Any, Any]:
            new = key_states.shape[-2]
            keys, values = self.buffers
            end = self.length + new
            if end > keys.shape[2]:
                grown = (_buffer(keys, keys.shape[0], end), _buffer(values, keys.shape[0], end))
                grown[0][:, :, :self.length] = keys[:, :, :self.length]
                grown[1][:, :, :self.length] = values[:, :, :self.length]
                keys, values = self.buffers = grown
            keys[:, :, self.length:end] = key_states
            values[:, :, self.length:end] = value_states
            self.length = end
            self.keys, self.values = keys[:, :, :end], values[:, :, :end]
            return self.keys, self.values

    return BufferLayer()


class DecodingBatch:
    """Rows decoding together: their key/value cache ``kv`` (per layer ``(keys, values)``
    buffers, each ``(rows, heads, capacity, head_dim)``, of which the first ``mask.shape[1]``
    positions are filled), attention ``mask`` ``(rows, seq)`` and each row's next input
    token."""

    def __init__(self, rows: list[Row], kv: list[tuple[torch.Tensor, torch.Tensor]],
                 mask: torch.Tensor, next_tokens: list[int], seen: torch.Tensor):
        self.rows = rows
        self.kv = kv
        self.mask = mask
        self.next_tokens = next_tokens
        #: ``(rows, vocab)``: the ids the repetition penalty applies to, per row.
        self.seen = seen

    def __len__(self) -> int:
        return len(self.rows)

    def merge(self, other: DecodingBatch) -> DecodingBatch:
        """Both batches' rows in one (left-padding the shorter cache)."""
        import torch
        import torch.nn.functional as F

        mine, theirs = self.mask.shape[1], other.mask.shape[1]
        length = max(mine, theirs)
        rows = len(self.rows)

        def joined(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            out = _buffer(a, rows + len(other.rows), length)
            out[:rows, :, length - mine:length] = a[:, :, :mine]
            out[rows:, :, length - theirs:length] = b[:, :, :theirs]
            return out

        def pad_mask(m: torch.Tensor) -> torch.Tensor:
            return F.pad(m, (length - m.shape[1], 0))

        kv = [(joined(k1, k2), joined(v1, v2))
              for (k1, v1), (k2, v2) in zip(self.kv, other.kv, strict=True)]
        mask = torch.cat([pad_mask(self.mask), pad_mask(other.mask)])
        return DecodingBatch(self.rows + other.rows, kv, mask,
                             self.next_tokens + other.next_tokens,
                             torch.cat([self.seen, other.seen]))

    def select(self, keep: list[int]) -> DecodingBatch:
        """A batch of the rows at ``keep``, with the padding no remaining row needs dropped."""
        import torch

        if len(keep) == len(self.rows):
            return self
        if not keep:
            return DecodingBatch([], [], self.mask[:0], [], self.seen[:0])
        index = torch.tensor(keep, device=self.mask.device)
        mask = self.mask.index_select(0, index)
        first = int(mask.any(dim=0).nonzero()[0, 0])
        length = self.mask.shape[1]

        def kept(t: torch.Tensor) -> torch.Tensor:
            out = _buffer(t, len(keep), length - first)
            out[:, :, :length - first] = t.index_select(0, index)[:, :, first:length]
            return out

        kv = [(kept(k), kept(v)) for k, v in self.kv]
        return DecodingBatch([self.rows[i] for i in keep], kv, mask[:, first:],
                             [self.next_tokens[i] for i in keep],
                             self.seen.index_select(0, index))

    def split(self) -> tuple[DecodingBatch, DecodingBatch]:
        """Two halves (for a retry after running out of memory)."""
        half = len(self.rows) // 2
        return self.select(list(range(half))), self.select(list(range(half, len(self.rows))))


#: Voices whose prefix keys and values a decoder keeps (each is ``layers x 2 x prefix x
#: model_dim`` numbers: 7.9 MB in fp32 for XTTS-v2's 30 layers and 32 conditioning latents).
PREFIX_CACHE_VOICES = 16


class PrefixCache:
    """The GPT's keys and values over each voice's conditioning latents (the prompt's fixed
    start), least recently used out first. Keyed by the latents' bytes, so two requests with the
    same voice share an entry however they got their latents."""

    def __init__(self, voices: int = PREFIX_CACHE_VOICES):
        self.voices = voices
        self._entries: OrderedDict[str, list[tuple[torch.Tensor, torch.Tensor]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(latent: torch.Tensor) -> str:
        import torch

        data = latent.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes()
        digest = hashlib.blake2b(data, digest_size=16)
        digest.update(f"{tuple(latent.shape)}{latent.dtype}".encode())
        return digest.hexdigest()

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


class BatchedGptDecoder:
    """Runs the XTTS GPT (``Xtts.gpt``) for many rows at once. Not thread-safe: one thread
    (the scheduler's) drives it."""

    def __init__(self, gpt: Any, device: str, *, fp16: bool = False,
                 prefix_voices: int = PREFIX_CACHE_VOICES):
        self.gpt = gpt
        self.device = device
        self.fp16 = fp16
        self.vocab = int(gpt.num_audio_tokens)
        self.start_token = int(gpt.start_audio_token)
        self.stop_token = int(gpt.stop_audio_token)
        self.max_new_tokens_limit = int(gpt.max_gen_mel_tokens)
        self.model_dim = int(gpt.model_dim)
        self.prefixes = PrefixCache(prefix_voices)
        #: Test seam: called as ``before_forward(phase, rows)`` before each forward pass.
        self.before_forward: Callable[[str, list[Row]], None] | None = None

    # ------------------------------------------------------------------ requests

    def check(self, request: DecodeRequest) -> None:
        """Raise :class:`DecodeRequestError` for a request this model cannot decode."""
        request.sampling.check()
        latent = request.gpt_cond_latent
        if latent.ndim != 3 or latent.shape[0] != 1 or latent.shape[2] != self.model_dim:
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
        """A row ready to join a batch (its prompt embedded, its generator seeded)."""
        import torch

        self.check(request)
        generator = request.generator
        if generator is None:
            generator = torch.Generator(device="cpu")
            if request.seed is None:
                generator.seed()
            else:
                generator.manual_seed(int(request.seed))
        gpt = self.gpt
        with torch.inference_mode(), self._autocast():
            tokens = torch.tensor(list(request.text_tokens), dtype=torch.int32,
                                  device=self.device)[None]
            text = torch.nn.functional.pad(tokens, (0, 1), value=gpt.stop_text_token)
            text = torch.nn.functional.pad(text, (1, 0), value=gpt.start_text_token)
            text_emb = gpt.text_embedding(text) + gpt.text_pos_embedding(text)
            start = torch.full((1, 1), self.start_token, dtype=torch.long, device=self.device)
            start_emb = gpt.mel_embedding(start)
            start_emb = start_emb + gpt.mel_pos_embedding(start_emb)
            rest = torch.cat([text_emb.to(start_emb.dtype), start_emb], dim=1)
        return Row(request, rest, generator)

    # ------------------------------------------------------------------ forward passes

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

    def _forward(self, phase: str, rows: list[Row], embeds: torch.Tensor, mask: torch.Tensor,
                 kv: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[Any, list]:
        """The GPT over ``embeds`` on top of the ``kv`` buffers (which hold the positions of
        ``mask`` before the new ones); returns the hidden states and the grown buffers."""
        from transformers import DynamicCache

        if self.before_forward is not None:
            self.before_forward(phase, rows)
        cache = DynamicCache()
        length = mask.shape[1] - embeds.shape[1]
        cache.layers = [_kv_layer(buffers, length) for buffers in kv]
        out = self.gpt.gpt(inputs_embeds=embeds, past_key_values=cache, attention_mask=mask,
                           use_cache=True, return_dict=True)
        return out.last_hidden_state, [layer.buffers for layer in out.past_key_values.layers]

    def _prefix(self, row: Row) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The keys and values of ``row``'s voice prefix, per layer ``(1, heads, prefix,
        head_dim)``: from the cache, or computed (and kept)."""
        latent = row.request.gpt_cond_latent
        key = PrefixCache.key(latent)
        kv = self.prefixes.get(key)
        if kv is None:
            if self.before_forward is not None:
                self.before_forward("prefix", [row])
            out = self.gpt.gpt(inputs_embeds=latent.to(self.device), use_cache=True,
                               return_dict=True)
            kv = [(layer.keys.clone(), layer.values.clone())
                  for layer in out.past_key_values.layers]
            self.prefixes.put(key, kv)
        return kv

    def prefill(self, rows: list[Row]) -> DecodingBatch:
        """Run the prompts of ``rows`` on their voice prefixes (each row laid out as ``[pad,
        prefix, pad, text + start]``) and pick each row's first code. Rows that finish at once
        (stop token, or ``max_new_tokens`` of 1) stay in the batch marked done; the caller
        takes them out."""
        import torch
        import torch.nn.functional as F

        with self._running():
            prefixes = [self._prefix(row) for row in rows]
            sizes = [kv[0][0].shape[2] for kv in prefixes]
            prefix, rest = max(sizes), max(row.rest.shape[1] for row in rows)
            kv = []
            for layer in range(len(prefixes[0])):
                like = prefixes[0][layer][0]
                keys, values = _buffer(like, len(rows), prefix + rest), _buffer(like, len(rows),
                                                                                 prefix + rest)
                for index, (row_kv, size) in enumerate(zip(prefixes, sizes, strict=True)):
                    keys[index, :, prefix - size:prefix] = row_kv[layer][0][0]
                    values[index, :, prefix - size:prefix] = row_kv[layer][1][0]
                kv.append((keys, values))
            embeds = torch.cat([F.pad(row.rest, (0, 0, rest - row.rest.shape[1], 0))
                                for row in rows])

            def ones(n: int, pad: int) -> torch.Tensor:
                return F.pad(torch.ones(n, dtype=torch.long, device=self.device), (pad, 0))

            mask = torch.stack([
                torch.cat([ones(size, prefix - size), ones(row.rest.shape[1],
                                                           rest - row.rest.shape[1])])
                for row, size in zip(rows, sizes, strict=True)
            ])
            hidden, kv = self._forward("prefill", rows, embeds, mask, kv)
            logits = self.gpt.gpt_inference.lm_head(hidden[:, -1:])[:, -1]
            seen = torch.zeros(len(rows), self.vocab, dtype=torch.bool, device=self.device)
            seen[:, 1] = True
            seen[:, self.start_token] = True
            tokens = self._choose(rows, logits, hidden[:, -1], seen)
        return DecodingBatch(list(rows), kv, mask, tokens, seen)

    def step(self, batch: DecodingBatch) -> None:
        """One decoding step for every row of ``batch`` (none of them done). On an exception
        the batch is left as it was, so the step can be retried (e.g. split in halves)."""
        import torch

        gpt = self.gpt
        with self._running():
            tokens = torch.tensor(batch.next_tokens, dtype=torch.long, device=self.device)[:, None]
            positions = torch.tensor([len(row.codes) for row in batch.rows], dtype=torch.long,
                                     device=self.device)[:, None]
            embeds = gpt.mel_embedding(tokens) + gpt.mel_pos_embedding.emb(positions)
            mask = torch.cat([batch.mask, torch.ones_like(batch.mask[:, :1])], dim=1)
            hidden, kv = self._forward("step", batch.rows, embeds, mask, batch.kv)
            logits = gpt.gpt_inference.lm_head(hidden)[:, -1]
            seen = batch.seen.clone()
            chosen = self._choose(batch.rows, logits, hidden[:, -1], seen)
        batch.kv, batch.mask, batch.next_tokens, batch.seen = kv, mask, chosen, seen

    # ------------------------------------------------------------------ choosing codes

    def _choose(self, rows: list[Row], logits: torch.Tensor, hidden: torch.Tensor,
                seen: torch.Tensor) -> list[int]:
        """Process ``logits`` ``(rows, vocab)`` per row, pick each row's code, record it with its
        stream latent and in ``seen`` (updated in place). Returns the codes (the next step's
        inputs)."""
        import torch

        scores = logits.to(dtype=torch.float32, copy=True)
        device = scores.device
        penalty = torch.tensor([r.request.sampling.repetition_penalty for r in rows],
                               dtype=torch.float32, device=device)[:, None]
        penalized = torch.where(scores < 0, scores * penalty, scores / penalty)
        scores = torch.where(seen, penalized, scores)

        sampling = [r.request.sampling.do_sample for r in rows]
        chosen = torch.argmax(scores, dim=-1)
        if any(sampling):
            sampled = self._sample(rows, scores)
            pick = torch.tensor(sampling, device=device)
            chosen = torch.where(pick, sampled, chosen)
        seen.scatter_(1, chosen[:, None], True)
        codes = chosen.tolist()
        latents = self.gpt.final_norm(hidden).float()
        for index, (row, code) in enumerate(zip(rows, codes, strict=True)):
            row.codes.append(int(code))
            row.latents.append(latents[index : index + 1])
            row.stopped = row.stopped or code == self.stop_token
        return codes

    def _sample(self, rows: list[Row], scores: torch.Tensor) -> torch.Tensor:
        """Temperature, top-k and top-p as ``generate`` applies them, then one draw per row from
        its own generator."""
        import torch

        device = scores.device
        params = [r.request.sampling for r in rows]
        temperature = torch.tensor([p.temperature for p in params], dtype=torch.float32,
                                   device=device)[:, None]
        scores = scores / temperature
        top_k = [min(max(p.top_k, 1), self.vocab) if p.top_k else 0 for p in params]
        if any(top_k):
            ordered = torch.sort(scores, dim=-1, descending=True).values
            kth_index = torch.tensor([max(k, 1) - 1 for k in top_k], device=device)[:, None]
            kth = ordered.gather(1, kth_index)
            active = torch.tensor([k > 0 for k in top_k], device=device)[:, None]
            scores = scores.masked_fill(active & (scores < kth), -math.inf)
        if any(p.top_p < 1.0 for p in params):
            sorted_logits, sorted_indices = torch.sort(scores, descending=False)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            threshold = torch.tensor([1 - p.top_p if p.top_p < 1.0 else -1.0 for p in params],
                                     dtype=torch.float32, device=device)[:, None]
            remove = cumulative <= threshold
            remove[..., -1:] = False
            remove = remove.scatter(1, sorted_indices, remove)
            scores = scores.masked_fill(remove, -math.inf)
        probs = torch.softmax(scores, dim=-1)
        cdf = probs.cumsum(dim=-1)
        draws = torch.cat([torch.rand(1, generator=row.generator) for row in rows])
        target = draws.to(device=device, dtype=cdf.dtype)[:, None] * cdf[:, -1:]
        return torch.searchsorted(cdf, target, right=True).squeeze(1).clamp(max=self.vocab - 1)


def decode_alone(decoder: BatchedGptDecoder, request: DecodeRequest) -> DecodeResult:
    """Decode one request on its own (a batch of one), start to end."""
    row = decoder.row(request)
    batch = decoder.prefill([row])
    row.emit()
    while not row.done:
        decoder.step(batch)
        row.emit()
    return row.result()
