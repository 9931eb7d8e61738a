"""Constrained local generation for anchored translation: required terms, a target-script vocabulary, no runaway repetition.

``AnchorHook`` is a ``mmm.llm.LogitsHook``: the local backend asks it for logits processors per
batch. Its one processor, ``TermForcingProcessor``, does three things at every step of every row:

1. **Script mask**: tokens that would put a character the filter rejects into the answer are
   banned (English: kana, Han, Japanese marks and full-width forms; Chinese: kana and Han outside
   GB2312; every target: byte pieces that decode to U+FFFD, and the ``extra_banned`` characters,
   e.g. ``;`` for an entity). So a translation cannot fail ``residual_japanese`` by construction.
2. **Required terms**: each row's ``LLMRequest.required_terms`` must occur verbatim in its answer.
   The state is recomputed from the tokens generated so far (no hidden state, so it is correct
   under any batching): a term already in the decoded answer is done; if the answer ends with a
   proper prefix of a pending term's tokens, the next token of that term is forced (a term the
   model starts, or one we started, is finished as written); if the model's best token would end
   the answer (end of sequence or a stop string) while terms are pending, the first pending term
   is started instead; and when the tokens left are only enough for the pending terms, they are
   forced in. The prompt names the terms, and ``term_bias`` nudges a pending term's first token
   up, so most rows place them where they fit; forcing is the guarantee. The "best token" is the
   arg max after masking, so the end-of-answer rule assumes greedy decoding; with sampling the
   pending terms are still forced by the length rule.
3. **No runaway repetition** (``no_repeat_ngram``): a token that would repeat an n-gram of the
   answer is banned, the loop a small model falls into when it does not know how to go on.

The vocabulary is decoded once per tokenizer and constraint (about 4 s for Gemma's 262k tokens on this CPU).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mmm import filters

VERSION = 2  # bump whenever the processor's behaviour changes: it is part of every cache key
# Beyond the filter's residual-Japanese classes: CJK punctuation and full-width forms have no place in English.
EXTRA_SCRIPT = {"en": "\u3000-\u303f\uff00-\uffef", "zh": "", "ja": ""}
REPLACEMENT = "\ufffd"  # what a lone byte piece decodes to
OPENERS = " \t\"'([{"


def banned_pattern(target: str, extra_banned: str = "") -> re.Pattern[str]:
    """Characters a token of a ``target``-language answer may not contain."""
    parts = [re.escape(REPLACEMENT), re.escape(extra_banned)] if extra_banned else [re.escape(REPLACEMENT)]
    residual = filters.residual_pattern(target)
    if residual:
        parts.append(residual[1:-1])  # the class body
    if EXTRA_SCRIPT.get(target):
        parts.append(EXTRA_SCRIPT[target])
    return re.compile("[" + "".join(p for p in parts if p) + "]")


@dataclass
class VocabInfo:
    """Per tokenizer and constraint: which token ids are banned, and which end an answer."""

    banned: Any  # torch.BoolTensor [vocab]
    terminal: set[int]


@dataclass
class AnchorHook:
    """Logits hook for one kind of request (terms, labels or texts) into ``target``.

    ``name`` enters the LLM cache key together with each request's terms, so constrained and
    free answers, or answers under different masks, never answer for each other.
    """

    target: str
    kind: str  # "entity" | "label" | "text": part of the name, chooses nothing by itself
    extra_banned: str = ""
    no_repeat_ngram: int = 0  # ban a token that would repeat an n-gram of the answer (0: off)
    term_bias: float = 0.0  # added to the logit of a pending term's first token, so terms come where they fit
    _vocab: dict[tuple[int, int, int], VocabInfo] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        banned = "".join(sorted(set(self.extra_banned))).replace("\n", "\\n")
        return (f"anchor-v{VERSION}-{self.kind}-{self.target}" + (f"-no[{banned}]" if banned else "")
                + (f"-ngram{self.no_repeat_ngram}" if self.no_repeat_ngram else "")
                + (f"-bias{self.term_bias:g}" if self.term_bias else ""))

    def processors(self, tokenizer: Any, requests: Sequence[Any], prompt_length: int) -> list[Any]:
        params = requests[0].params
        return [TermForcingProcessor(
            tokenizer=tokenizer,
            terms=[list(r.required_terms) for r in requests],
            prompt_length=prompt_length,
            max_new_tokens=params.max_tokens,
            vocab=lambda size: self.vocab(tokenizer, size, tuple(params.stop)),
            space_before_terms=self.target == "en",
            no_repeat_ngram=self.no_repeat_ngram,
            term_bias=self.term_bias,
        )]

    def vocab(self, tokenizer: Any, size: int, stop: tuple[str, ...]) -> VocabInfo:
        key = (id(tokenizer), size, hash(stop))
        if key not in self._vocab:
            self._vocab[key] = build_vocab(tokenizer, size, banned_pattern(self.target, self.extra_banned), stop)
        return self._vocab[key]


def build_vocab(tokenizer: Any, size: int, banned: re.Pattern[str], stop: Sequence[str]) -> VocabInfo:
    """Decode every token once: ban those with a banned character; terminal = EOS or a stop string."""
    import torch

    pieces = tokenizer.batch_decode([[i] for i in range(min(size, len(tokenizer)))], skip_special_tokens=False)
    # special and added control tokens (Gemma's <start_of_image>, <unused0>, ...) are never part of a
    # translation; added whitespace tokens (Gemma adds "\n", "\t" runs) are ordinary text
    control = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", None) or {})
    mask = torch.ones(size, dtype=torch.bool)  # ids past the tokenizer's vocabulary are never valid
    terminal = {i for i in (tokenizer.eos_token_id,) if i is not None}
    for i, piece in enumerate(pieces):
        cut = min((piece.index(s) for s in stop if s in piece), default=None)
        if cut is not None:  # ends the answer: only what comes before the stop string must be clean
            terminal.add(i)
            mask[i] = bool(banned.search(piece[:cut]))
        elif i in control and not piece.isspace():
            mask[i] = i not in terminal
        else:
            mask[i] = bool(banned.search(piece)) or not piece
    return VocabInfo(banned=mask, terminal=terminal)


class TermForcingProcessor:
    """A transformers ``LogitsProcessor``; see the module docstring for the rules."""

    def __init__(self, tokenizer: Any, terms: list[list[str]], prompt_length: int, max_new_tokens: int,
                 vocab: Any, space_before_terms: bool, no_repeat_ngram: int = 0,
                 term_bias: float = 0.0):
        self.tokenizer = tokenizer
        self.terms = terms
        self.prompt_length = prompt_length
        self.max_new_tokens = max_new_tokens
        self._vocab_for = vocab
        self.space_before_terms = space_before_terms
        self.no_repeat_ngram = no_repeat_ngram
        self.term_bias = term_bias
        self._encodings: dict[str, tuple[list[int], list[int] | None]] = {}
        self.forced_steps = [0] * len(terms)  # per row, for tests and diagnostics

    def encodings(self, term: str) -> tuple[list[int], list[int] | None]:
        """Token ids that spell ``term`` as written, and (spaced scripts) after a space, or None."""
        if term not in self._encodings:
            plain = self.tokenizer.encode(term, add_special_tokens=False)
            spaced = None
            if self.space_before_terms:
                ids = self.tokenizer.encode(" " + term, add_special_tokens=False)
                if ids != plain and term in self.tokenizer.decode(ids):
                    spaced = ids
            self._encodings[term] = (plain, spaced)
        return self._encodings[term]

    def sequences(self, term: str) -> list[list[int]]:
        return [seq for seq in self.encodings(term) if seq]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        vocab: VocabInfo = self._vocab_for(scores.shape[-1])
        scores = scores.masked_fill(vocab.banned.to(scores.device), float("-inf"))
        for row, terms in enumerate(self.terms):
            generated = input_ids[row, self.prompt_length:].tolist()
            repeats = repeated_ngram_tokens(generated, self.no_repeat_ngram)
            if repeats:
                scores[row, repeats] = float("-inf")
            if not terms:
                continue
            token = self._forced_token(generated, terms, scores[row], vocab)
            if token is not None:
                self.forced_steps[row] += 1
                keep = scores[row, token].clone() if scores[row, token] > float("-inf") else scores.new_tensor(0.0)
                scores[row] = float("-inf")
                scores[row, token] = keep
        return scores

    def _forced_token(self, generated: list[int], terms: list[str], scores: Any, vocab: VocabInfo) -> int | None:
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        pending = [t for t in terms if t not in text]
        if not pending:
            return None
        best: tuple[int, int] | None = None  # (prefix length, next token)
        for term in pending:
            for seq in self.sequences(term):
                for k in range(min(len(seq) - 1, len(generated)), 0, -1):
                    if generated[-k:] == seq[:k]:
                        if best is None or k > best[0]:
                            best = (k, seq[k])
                        break
        if best is not None:
            return best[1]
        if self.term_bias:
            starts = {self._start(t, text) for t in pending}
            scores[list(starts)] += self.term_bias
        left = self.max_new_tokens - len(generated)
        needed = sum(max(len(s) for s in self.sequences(t)) for t in pending)  # room for the longer spelling
        if left <= needed or int(scores.argmax()) in vocab.terminal:
            return self._start(pending[0], text)
        return None

    def _start(self, term: str, text: str) -> int:
        plain, spaced = self.encodings(term)
        use_space = spaced is not None and bool(text) and text[-1] not in OPENERS
        return (spaced if use_space else plain)[0]


def repeated_ngram_tokens(generated: list[int], n: int) -> list[int]:
    """Tokens that would complete an ``n``-gram already in ``generated`` (runaway repetition)."""
    if n < 2 or len(generated) < n:
        return []
    tail = generated[len(generated) - n + 1:]
    return sorted({generated[i + n - 1] for i in range(len(generated) - n + 1) if generated[i:i + n - 1] == tail})
