"""Constrained decoding for the MMM output grammar: a ``LogitsProcessor`` that only lets a row write answers that parse.

Modes (``predict.constrained``, ``--constrained``):

* ``off``     no processor: the model's free answer.
* ``grammar`` the syntax of the row's target format only: ``LABEL/TASK/`` (the row's own task word)
  then ``:LABEL;ENTITY`` pairs (TCREE: at most one ``:HEAD;LABEL;TAIL``). Labels and entities are
  free but contain none of ``/ : ;`` or a newline, start with a non-space character and are at most
  ``MAX_OPEN_BYTES`` / ``MAX_ENTITY_BYTES`` bytes long.
* ``schema``  the grammar plus the row's sub-dataset: the text label is one of the inventory of the
  row's language (TCONER: free, bounded), the marker is exactly the row's ``/TASK/``, each word label
  comes from the word inventory (TCONER: free, bounded; a row's ``labels`` override replaces it) and
  every entity (TCREE: head and tail) is a verbatim span of the input text that neither starts nor
  ends inside a run of ASCII letters and digits (``Paris``, not ``Pari`` or ``aris``; CJK text is
  split anywhere, since it has no spaces to find words by). In pairs, an entity names nothing the answer
  already named, under any label, and does not extend an earlier entity (``東京都`` then ``東京都は`` is
  refused; 2 of the sample's 630 gold pair answers have such an extension). Entities may then hold
  ``:`` or ``/`` when the text does (``07:00``, URLs): a ``:`` after an entity is read as the start of
  the next pair unless it continues a span of the text, and if both readings are open the next byte
  decides, which is exactly how ``records.parse_word_part`` splits (a label starts after the last
  ``:`` before its ``;``).

Common to both constrained modes: no piece is written twice; at most ``MAX_PIECES`` pieces (the
sample's longest gold answer has 9; TCREE has one); the answer may end (EOS, or a token holding a stop
string such as the newline) only after the marker with zero pieces or right after a complete
entity (TCREE: after the tail), so the last piece is never cut; a new piece starts only with
``RESERVE_TOKENS`` tokens to spare beyond what the shortest finished piece needs, and no token may
leave more bytes to write than tokens are left (``need``; every byte has a single-byte token), so an
answer that starts with the budget to finish is never cut by ``max_new_tokens``.

How it works. The vocabulary is turned into bytes once per tokenizer (``vocab_bytes``; byte-fallback
tokens ``<0xNN>`` and byte-level BPE pieces are mapped to their real bytes, so a CJK character split
over several tokens is handled like any other), and the grammar is an automaton over bytes
(``advance``), so a token is judged by the bytes it appends, whatever its boundaries. Each row's
state is advanced by the one token generated since the last step (recomputed from all generated ids
whenever the step count does not match, e.g. a new batch), so left padding and rows that finish early
need no bookkeeping. A span of the text is checked with ``bytes in bytes`` on the UTF-8 input.

Exactness. Per step the processor sets every logit to ``-inf`` except the best allowed token(s): it
walks each row's candidates by descending logit (``torch.topk`` in growing windows up to
``SCAN_LIMIT``) and keeps the first ``keep`` allowed ones. An allowed token outside the window has a
lower logit than every token inside it, so for greedy decoding (``keep=1``) the choice equals an exact
mask over the whole vocabulary. Only when none of the ``SCAN_LIMIT`` best tokens is allowed does it
fall back to single-byte tokens (every byte the automaton accepts; the best of them by logit), which
can miss a better multi-byte token further down. If even that allows nothing (the state is a dead end,
e.g. an entity that duplicates an earlier one and cannot be extended) the row may only end. With
sampling, ``keep`` > 1 keeps a top-k-like truncation of the allowed tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from functools import lru_cache
from typing import Any, Literal, get_args

from mmm import registry
from mmm.errors import MMMError

Mode = Literal["off", "grammar", "schema"]
MODES: tuple[str, ...] = get_args(Mode)
MAX_PIECES = 12  # pairs per answer (the sample's gold answers have at most 9)
MAX_OPEN_BYTES = 48  # a free label (TCONER text and word labels, grammar mode): 16 CJK characters
MAX_ENTITY_BYTES = 128  # a free entity (grammar mode); schema entities are bounded by the text
RESERVE_TOKENS = 6  # a new piece starts only if it could be finished with this many tokens to spare
SCAN_WINDOWS = (8, 64, 512, 4096)  # candidate windows tried in turn, best logits first
SCAN_LIMIT = SCAN_WINDOWS[-1]
DELIMS = b"/:;\n"
SPACE = b" \t\r\n\x0b\x0c"

# Phases of a row's automaton.
LABEL, MARKER, PIECE, FIELD, DONE = range(5)


class ConstraintError(MMMError, ValueError):
    """A constrained-decoding request that cannot be built (unknown mode, dataset or language)."""


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConstraintError(f"constrained must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class RowSpec:
    """What one row may write. ``None`` for a label set means free (bounded); ``source`` None: free entities."""

    marker: bytes  # b"/TASK/"
    text_labels: frozenset[bytes] | None
    word_labels: frozenset[bytes] | None
    source: bytes | None
    triple: bool
    with_label: bool  # the target writes the text label (joint, text_only)
    with_pieces: bool  # the target writes word-level pieces (joint, word_only)
    max_pieces: int

    @property
    def label_field(self) -> int:
        return 1 if self.triple else 0

    @property
    def fields(self) -> int:
        return 3 if self.triple else 2


def row_spec(mode: str, text: str, task: str, dataset: str, lang: str | None = None, target: str = "joint",
             labels: Sequence[str] | None = None, max_pieces: int = MAX_PIECES) -> RowSpec:
    """The constraint of one row. ``lang`` None: the union of the three languages' inventories;
    ``labels``: the word labels this row may use (replaces the inventory, also in grammar mode)."""
    check_mode(mode)
    if mode == "off":
        raise ConstraintError("constrained 'off' has no row constraint")
    try:
        kind = registry.kind(dataset)
    except KeyError as exc:
        raise ConstraintError(str(exc.args[0])) from None
    if task not in kind.instructions:
        raise ConstraintError(f"task {task!r} is not an instruction word of {dataset}")
    langs = registry.LANGS if lang is None else (lang,)
    if lang is not None and lang not in registry.LANGS:
        raise ConstraintError(f"unknown lang {lang!r}; expected one of {', '.join(registry.LANGS)}")
    text_labels = word_labels = None
    if mode == "schema" and not kind.open_domain:
        text_labels = frozenset(label.encode() for lg in langs for label in kind.text_inventory(lg) or ())
        word_labels = frozenset(label.encode() for lg in langs for label in kind.word_inventory(lg) or ())
    if labels is not None:
        bad = [x for x in labels if not x or set(x) & set("/:;\n")]
        if bad or not labels:
            raise ConstraintError(f"labels must be non-empty and free of '/', ':', ';' and newlines: {bad or labels}")
        word_labels = frozenset(x.encode() for x in labels)
    return RowSpec(
        marker=f"/{task}/".encode(), text_labels=text_labels, word_labels=word_labels,
        source=text.encode() if mode == "schema" else None, triple=kind.word_level == "triple",
        with_label=target != "word_only", with_pieces=target != "text_only",
        max_pieces=1 if kind.word_level == "triple" else max_pieces,
    )


@dataclass(frozen=True)
class State:
    """Where a row is in its answer. ``buf``: the bytes of the field being written; ``alt``: ``buf`` ends
    in a ``:`` that may also start the next pair (schema entities)."""

    phase: int
    pos: int = 0  # MARKER: bytes of the marker matched; FIELD: index of the field in the piece
    buf: bytes = b""
    alt: bool = False
    head: bytes = b""  # the piece's fields written before the current one, joined by ';'
    pieces: frozenset[bytes] = frozenset()


def initial(spec: RowSpec) -> State:
    return State(LABEL) if spec.with_label else State(MARKER)


@lru_cache(maxsize=256)
def _prefixes(labels: frozenset[bytes]) -> frozenset[bytes]:
    return frozenset(label[:n] for label in labels for n in range(1, len(label) + 1))


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _pending(buf: bytes) -> int:
    """Continuation bytes the last (UTF-8) character of ``buf`` still needs."""
    tail = 0
    while tail < min(3, len(buf)) and 0x80 <= buf[-1 - tail] < 0xC0:
        tail += 1
    lead = buf[-1 - tail] if tail < len(buf) else 0
    need = 1 if 0xC2 <= lead < 0xE0 else 2 if 0xE0 <= lead < 0xF0 else 3 if 0xF0 <= lead < 0xF5 else 0
    return max(need - tail, 0)


def _free_byte(buf: bytes, byte: int, limit: int) -> bool:
    """Whether ``byte`` may follow ``buf`` in a free field: well-formed UTF-8, no control character, at most
    ``limit`` bytes (a started character may always be completed)."""
    if _pending(buf):
        return 0x80 <= byte < 0xC0
    if byte < 0x20 or byte == 0x7F or 0x80 <= byte < 0xC2 or byte >= 0xF5:
        return False
    return len(buf) < limit


def _label_byte(buf: bytes, byte: int, labels: frozenset[bytes] | None) -> bool:
    """Whether ``byte`` may follow ``buf`` inside a label."""
    if byte in DELIMS or (not buf and (byte in SPACE or 0x80 <= byte < 0xC0)):
        return False
    if labels is None:
        return _free_byte(buf, byte, MAX_OPEN_BYTES)
    return buf + bytes([byte]) in _prefixes(labels)


def _label_done(buf: bytes, labels: frozenset[bytes] | None) -> bool:
    return bool(buf) and (buf in labels if labels is not None else _valid_utf8(buf))


def _word(byte: int) -> bool:
    """An ASCII letter or digit: a span may not start or end inside a run of them."""
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _starts_word(source: bytes, at: int) -> bool:
    return at == 0 or not (_word(source[at - 1]) and _word(source[at]))


def _ends_word(source: bytes, at: int) -> bool:
    return at == len(source) or not (_word(source[at - 1]) and _word(source[at]))


@lru_cache(maxsize=65536)
def _span_starts(source: bytes, span: bytes) -> tuple[int, ...]:
    """Where ``span`` occurs in ``source`` starting on a word boundary (``_word``)."""
    found, at = [], source.find(span)
    while at >= 0:
        if _starts_word(source, at):
            found.append(at)
        at = source.find(span, at + 1)
    return tuple(found)


def _span_complete(source: bytes, span: bytes) -> bool:
    """Whether ``span`` occurs in ``source`` starting and ending on word boundaries."""
    return any(_ends_word(source, at + len(span)) for at in _span_starts(source, span))


def _entity_byte(spec: RowSpec, buf: bytes, byte: int) -> bool:
    """Whether ``byte`` extends the entity ``buf`` (not counting a ``:`` read as a pair boundary)."""
    if byte in b";\n" or (not buf and (byte in SPACE or 0x80 <= byte < 0xC0)):
        return False
    if spec.source is None:
        return byte not in DELIMS and _free_byte(buf, byte, MAX_ENTITY_BYTES)
    return bool(_span_starts(spec.source, buf + bytes([byte])))


def _piece_key(state: State, entity: bytes) -> bytes:
    return state.head + b";" + entity


def _entity_done(spec: RowSpec, state: State, entity: bytes) -> bool:
    """Whether ``entity`` may close the current piece (complete characters, no trailing space, no repeated
    piece; schema: a span that ends on a word boundary and, in pairs, names no entity of the answer again,
    under any label, nor extends one)."""
    if not entity or entity[-1] in SPACE or not _valid_utf8(entity) or _piece_key(state, entity) in state.pieces:
        return False
    if spec.source is None:
        return True
    return not _extends_earlier(spec, state, entity) and _span_complete(spec.source, entity)


def _extends_earlier(spec: RowSpec, state: State, entity: bytes) -> bool:
    """Schema pairs: ``entity`` starts with an entity the answer already named (so does every extension of it)."""
    return spec.source is not None and not spec.triple and any(entity.startswith(e) for e in _entities(state.pieces))


@lru_cache(maxsize=4096)
def _entities(pieces: frozenset[bytes]) -> tuple[bytes, ...]:
    """The entities of an answer's closed pairs (a pair's key is ``LABEL;ENTITY``)."""
    return tuple(key.split(b";", 1)[1] for key in pieces)


def _close(state: State, entity: bytes) -> State:
    return State(PIECE, pieces=state.pieces | {_piece_key(state, entity)})


def _is_entity(spec: RowSpec, field: int) -> bool:
    return field != spec.label_field


def advance(spec: RowSpec, state: State, data: bytes) -> State | None:
    """The state after writing ``data``, or ``None`` if the grammar forbids it."""
    for byte in data:
        state = _step(spec, state, byte)
        if state is None:
            return None
    return state


def _step(spec: RowSpec, s: State, byte: int) -> State | None:
    if s.phase == LABEL:
        if byte == spec.marker[0]:
            return State(MARKER, pos=1) if _label_done(s.buf, spec.text_labels) else None
        return replace(s, buf=s.buf + bytes([byte])) if _label_byte(s.buf, byte, spec.text_labels) else None
    if s.phase == MARKER:
        if byte != spec.marker[s.pos]:
            return None
        if s.pos + 1 < len(spec.marker):
            return replace(s, pos=s.pos + 1)
        return State(PIECE) if spec.with_pieces else State(DONE)
    if s.phase == PIECE:
        return State(FIELD, pieces=s.pieces) if byte == ord(":") and len(s.pieces) < spec.max_pieces else None
    if s.phase != FIELD:
        return None
    field, last = s.pos, s.pos == spec.fields - 1
    if not _is_entity(spec, field):
        if byte == ord(";"):
            if not _label_done(s.buf, spec.word_labels):
                return None
            return replace(s, pos=field + 1, buf=b"", head=(s.head + b";" if s.head else b"") + s.buf)
        return replace(s, buf=s.buf + bytes([byte])) if _label_byte(s.buf, byte, spec.word_labels) else None
    if s.alt:  # buf ends in ':' that may be the next pair's ':'
        if _entity_byte(spec, s.buf, byte):
            return replace(s, buf=s.buf + bytes([byte]), alt=False)
        if not _label_byte(b"", byte, spec.word_labels):
            return None
        new = _close(s, s.buf[:-1])
        return State(FIELD, buf=bytes([byte]), pieces=new.pieces)
    if not last:  # TCREE head: ends at ';'
        if byte == ord(";"):
            if not (s.buf and s.buf[-1] not in SPACE and _valid_utf8(s.buf)) or (
                    spec.source is not None and not _span_complete(spec.source, s.buf)):
                return None
            return State(FIELD, pos=field + 1, head=s.buf, pieces=s.pieces)
        return replace(s, buf=s.buf + bytes([byte])) if _entity_byte(spec, s.buf, byte) else None
    if byte == ord(":") and not spec.triple:
        extend = spec.source is not None and _entity_byte(spec, s.buf, byte)
        boundary = _entity_done(spec, s, s.buf) and len(s.pieces) + 1 < spec.max_pieces
        if extend and boundary:
            return replace(s, buf=s.buf + b":", alt=True)
        if extend:
            return replace(s, buf=s.buf + b":")
        return State(FIELD, pieces=_close(s, s.buf).pieces) if boundary else None
    return replace(s, buf=s.buf + bytes([byte])) if _entity_byte(spec, s.buf, byte) else None


def can_end(spec: RowSpec, s: State) -> bool:
    """Whether the answer may end here (the text after it is what ``finish_row`` keeps, then stripped)."""
    if s.phase == DONE:
        return True
    if s.phase == PIECE:
        return True
    if s.phase == FIELD and s.pos == spec.fields - 1 and _is_entity(spec, s.pos):
        entity = s.buf.rstrip(SPACE)  # prediction strips the answer
        return _entity_done(spec, s, entity)
    return False


def viable(spec: RowSpec, s: State) -> bool:
    """Whether the answer can still be finished from ``s`` (an entity that repeats a piece and cannot
    grow into another span, or that extends an earlier entity, is a dead end)."""
    if s.phase != FIELD or not _is_entity(spec, s.pos) or not s.buf or s.pos != spec.fields - 1:
        return True
    if _extends_earlier(spec, s, s.buf):
        return False
    if _entity_done(spec, s, s.buf.rstrip(SPACE)) or _entity_done(spec, s, s.buf):
        return True
    if spec.source is None:
        return len(s.buf) < MAX_ENTITY_BYTES
    for start in _span_starts(spec.source, s.buf):
        follow = start + len(s.buf)
        if follow < len(spec.source) and spec.source[follow] not in b";\n":
            return True
    return False


@lru_cache(maxsize=4096)
def _shortest_char(source: bytes | None) -> int:
    """Bytes of the shortest non-space character of ``source`` (an entity's least length); 1 if free."""
    if source is None:
        return 1
    chars = [c for c in source.decode("utf-8", errors="ignore") if not c.isspace()]
    return min((len(c.encode()) for c in chars), default=1)


def _label_left(buf: bytes, labels: frozenset[bytes] | None, cost: Callable[[bytes], int]) -> int:
    """Tokens that complete the label ``buf``."""
    if labels is None:
        return _pending(buf) if buf else 1
    return min((cost(label[len(buf):]) for label in labels if label.startswith(buf)), default=0)


def need(spec: RowSpec, s: State, cost: Callable[[bytes], int] = len) -> int:
    """How many tokens surely take ``s`` to a state where the answer may end: fixed text (marker, the
    rest of an inventory label) costs ``cost`` (tokens that spell it), free text one token per byte
    (every byte has a single-byte token). An answer that keeps ``need`` within the tokens left can
    always be finished in time."""
    entity = _shortest_char(spec.source)
    if s.phase == LABEL:
        return _label_left(s.buf, spec.text_labels, cost) + cost(spec.marker)
    if s.phase == MARKER:
        return cost(spec.marker[s.pos:])
    if s.phase != FIELD or can_end(spec, s):
        return 0
    if s.pos == spec.fields - 1:  # the last entity: complete it to a span end, or write one
        return _last_entity_need(spec, s) if s.buf else entity
    if s.pos == spec.label_field:
        return _label_left(s.buf, spec.word_labels, cost) + 1 + entity
    head = _to_span_end(spec.source, s.buf) if s.buf else entity
    return head + 1 + _label_left(b"", spec.word_labels, cost) + 1 + entity


def _last_entity_need(spec: RowSpec, s: State) -> int:
    """Bytes that take the answer's last entity ``s.buf`` (which cannot end the answer yet) to the nearest
    place where it can: a complete character, and in schema mode a span of the text ending on a word
    boundary, that repeats no piece (the nearest span end may be a repeat: then the one after it)."""
    if spec.source is None:
        return max(_pending(s.buf), 1)
    dead_end = len(spec.source) + 1  # more than any budget
    if _extends_earlier(spec, s, s.buf):
        return dead_end
    best = None
    for start in _span_starts(spec.source, s.buf):
        for end in range(start + len(s.buf) + 1, len(spec.source) + 1):
            if best is not None and end - start - len(s.buf) >= best:
                break
            if _entity_done(spec, s, spec.source[start:end].rstrip(SPACE)):
                best = end - start - len(s.buf)
                break
    return dead_end if best is None else best


def _to_span_end(source: bytes | None, buf: bytes) -> int:
    """Bytes that take the entity ``buf`` to the nearest place it may end (a complete character; schema: a
    word boundary of the text), one token each."""
    if source is None:
        return _pending(buf)
    return _span_end_distance(source, buf)


@lru_cache(maxsize=65536)
def _span_end_distance(source: bytes, buf: bytes) -> int:
    best = None
    for start in _span_starts(source, buf):
        end = start + len(buf)
        while end < len(source) and not (_ends_word(source, end) and _valid_utf8(source[start:end])):
            end += 1
        if best is None or end - start - len(buf) < best:
            best = end - start - len(buf)
    return _pending(buf) if best is None else best


def may_start_piece(spec: RowSpec, s: State) -> bool:
    return s.phase == PIECE and len(s.pieces) < spec.max_pieces


@dataclass
class Vocab:
    """Per tokenizer: each token's bytes (``None``: never allowed), its bytes before a stop string if
    it holds one (``ends``), the EOS ids, and a token for each single byte (the fallback)."""

    pieces: list[bytes | None]
    ends: dict[int, bytes]
    eos: frozenset[int]
    byte_tokens: dict[int, int]
    _ids: dict[bytes, int] = dataclass_field(default_factory=dict, repr=False)
    _costs: dict[bytes, int] = dataclass_field(default_factory=dict, repr=False)

    def cost(self, data: bytes) -> int:
        """Tokens of a greedy longest-match spelling of ``data`` (an upper bound on the fewest)."""
        if data not in self._costs:
            if not self._ids:
                self._ids.update((p, i) for i, p in reversed(list(enumerate(self.pieces)))
                                 if p is not None and i not in self.ends and len(p) <= 32)
            count, at = 0, 0
            while at < len(data):
                at += next((n for n in range(min(32, len(data) - at), 0, -1) if data[at:at + n] in self._ids), 1)
                count += 1
            self._costs[data] = count
        return self._costs[data]


_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet: printable character -> byte."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


_VOCABS: dict[tuple[int, int, tuple[str, ...], frozenset[int]], tuple[Any, Vocab]] = {}
_KEEP_VOCABS = 2  # tokenizers whose bytes stay cached (the entry holds the tokenizer, so its id is not reused)


def vocab_bytes(tokenizer: Any, size: int, stop_strings: Sequence[str], eos_ids: Sequence[int]) -> Vocab:
    """Decode the vocabulary once per tokenizer (cached): 3-6 s for Gemma's 262k tokens."""
    key = (id(tokenizer), size, tuple(stop_strings), frozenset(eos_ids))
    cached = _VOCABS.get(key)
    if cached is None or cached[0] is not tokenizer:
        while len(_VOCABS) >= _KEEP_VOCABS:
            _VOCABS.pop(next(iter(_VOCABS)))
        cached = _VOCABS[key] = (tokenizer, _build_vocab(tokenizer, size, tuple(stop_strings), frozenset(eos_ids)))
    return cached[1]


def _build_vocab(tokenizer: Any, size: int, stop_strings: tuple[str, ...], eos: frozenset[int]) -> Vocab:
    count = min(size, len(tokenizer))
    texts = tokenizer.batch_decode([[i] for i in range(count)], skip_special_tokens=False)
    names = tokenizer.convert_ids_to_tokens(list(range(count)))
    control = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", None) or {})
    alphabet = _byte_level_alphabet()
    pieces: list[bytes | None] = [None] * size
    ends: dict[int, bytes] = {}
    for i, (text, name) in enumerate(zip(texts, names)):
        if i in eos:
            continue
        if "\ufffd" in text:  # a partial character: take the bytes from the token's own spelling
            match = _BYTE.fullmatch(name or "")
            if match:
                data = bytes([int(match.group(1), 16)])
            elif name and all(c in alphabet for c in name):
                data = bytes(alphabet[c] for c in name)
            else:
                continue
        elif (i in control and not text.isspace()) or not text:
            continue
        else:
            data = text.encode()
        cut = min((data.find(s.encode()) for s in stop_strings if s.encode() in data), default=-1)
        if cut >= 0:
            ends[i] = data[:cut]
        pieces[i] = data
    byte_tokens: dict[int, int] = {}
    for i, data in enumerate(pieces):
        if data is not None and len(data) == 1 and i not in ends:
            byte_tokens.setdefault(data[0], i)
    return Vocab(pieces, ends, eos, byte_tokens)


class MMMGrammarProcessor:
    """A transformers ``LogitsProcessor`` holding each row of a batch to its ``RowSpec`` (module docstring).

    ``prompt_width`` is the padded prompt length; rows are in batch order; ``None`` rows are free."""

    def __init__(self, vocab: Vocab, specs: Sequence[RowSpec | None], prompt_width: int, max_new_tokens: int,
                 keep: int = 1):
        self.vocab = vocab
        self.specs = list(specs)
        self.width = prompt_width
        self.max_new_tokens = max_new_tokens
        self.keep = keep
        self.states: list[State | None] = [initial(s) if s else None for s in self.specs]
        self.ended = [False] * len(self.specs)
        self.step = 0  # tokens generated when the states were last brought up to date
        self.fallbacks = [0] * len(self.specs)  # per row: steps decided by the single-byte fallback or forced end

    def _consume(self, row: int, token: int) -> None:
        spec, state = self.specs[row], self.states[row]
        if spec is None or self.ended[row] or state is None:
            return
        if token in self.vocab.eos:
            self.ended[row] = True
            return
        if token in self.vocab.ends:
            self.ended[row] = True
            return
        data = self.vocab.pieces[token] if token < len(self.vocab.pieces) else None
        self.states[row] = None if data is None else advance(spec, state, data)

    def _sync(self, input_ids: Any) -> None:
        generated = input_ids.shape[1] - self.width
        if generated == self.step + 1:
            for row, token in enumerate(input_ids[:, -1].tolist()):
                self._consume(row, token)
        elif generated != self.step:  # not the next step of this batch: recompute from every generated id
            self.states = [initial(s) if s else None for s in self.specs]
            self.ended = [False] * len(self.specs)
            for row, ids in enumerate(input_ids[:, self.width:].tolist()):
                for token in ids:
                    self._consume(row, token)
        self.step = generated

    def allowed(self, row: int, token: int, left: int) -> bool:
        """Whether ``token`` may come next in ``row`` with ``left`` tokens of the budget after it."""
        spec, state = self.specs[row], self.states[row]
        assert spec is not None and state is not None
        if token in self.vocab.eos:
            return can_end(spec, state)
        end = self.vocab.ends.get(token)
        data = self.vocab.pieces[token] if end is None and token < len(self.vocab.pieces) else end
        if data is None:
            return False
        after = advance(spec, state, data)
        if after is None:
            return False
        if end is not None:
            return can_end(spec, after)
        margin = RESERVE_TOKENS if may_start_piece(spec, state) and data[:1] == b":" else 0
        return need(spec, after, self.vocab.cost) + margin <= left and viable(spec, after)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self._sync(input_ids)
        left = self.max_new_tokens - self.step - 1
        rows, cols = [], []
        free = []
        first = scores.topk(min(SCAN_WINDOWS[0], scores.shape[-1]), dim=-1).indices.tolist()
        for row, spec in enumerate(self.specs):
            if spec is None or self.ended[row]:
                free.append(row)
                continue
            chosen = self._choose(row, scores[row], left, first[row])
            rows += [row] * len(chosen)
            cols += chosen
        masked = torch.full_like(scores, float("-inf"))
        if free:
            masked[free] = scores[free]
        if rows:
            index = (torch.tensor(rows, device=scores.device), torch.tensor(cols, device=scores.device))
            masked[index] = scores[index]
        return masked

    def _choose(self, row: int, scores: Any, left: int, first: list[int]) -> list[int]:
        state = self.states[row]
        if state is None:  # the row left the grammar (another processor, or a forced end): let it end
            return sorted(self.vocab.eos)
        chosen: list[int] = []
        seen = 0
        for window in SCAN_WINDOWS:
            ids = first if window == SCAN_WINDOWS[0] else scores.topk(min(window, scores.shape[-1])).indices.tolist()
            for token in ids[seen:]:
                if self.allowed(row, token, left):
                    chosen.append(token)
                    if len(chosen) >= self.keep:
                        return chosen
            seen = len(ids)
            if chosen:
                return chosen
        self.fallbacks[row] += 1
        fallback = [t for t in self.vocab.byte_tokens.values() if self.allowed(row, t, left)]
        fallback += [t for t in self.vocab.eos if self.allowed(row, t, left)]
        if fallback:
            return [max(fallback, key=lambda t: float(scores[t]))]
        return sorted(self.vocab.eos)


def processor_factory(tokenizer: Any, specs: Sequence[RowSpec | None], max_new_tokens: int,
                      stop_strings: Sequence[str], eos_ids: Sequence[int], keep: int = 1) -> Any:
    """A ``generation.ProcessorFactory`` for one batch whose rows are ``specs`` (in batch order)."""

    def make(width: int) -> list[Any]:
        vocab = vocab_bytes(tokenizer, len(tokenizer), stop_strings, eos_ids)  # ids past it are never allowed
        return [MMMGrammarProcessor(vocab, specs, width, max_new_tokens, keep)]

    return make
