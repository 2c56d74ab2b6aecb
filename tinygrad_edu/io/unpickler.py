"""A pickle reader that can only build plain data, for files that may be hostile.

Python's own :mod:`pickle` is a small stack machine whose instructions can import and call any
function -- which is why unpickling an untrusted file can run code. This module is a second,
deliberately poorer implementation of that machine (the same idea as PyTorch's
``torch/_weights_only_unpickler.py``), written so that a file can neither run code nor make the
reader do more work than the file's size:

* **No imports.** ``GLOBAL`` / ``STACK_GLOBAL`` are answered from the caller's fixed table of
  harmless stand-ins; anything else is refused.
* **Calls only to stand-ins.** ``REDUCE`` calls a callable only if that table holds it;
  ``NEWOBJ``, ``INST``, ``OBJ`` and the protocol-5 buffer instructions are not implemented.
* **Mutation only of fresh plain containers.** ``APPEND(S)`` works on lists, ``SETITEM(S)`` on
  dicts, and ``BUILD`` (which would otherwise overwrite an object's ``__dict__``) is accepted
  only on a dict -- its state is checked and dropped. So nothing a file names, in particular no
  stand-in, can be changed by it, and nothing leaks from one load into the next.
* **Bounded work.** Every instruction costs O(1) or O(bytes it consumes); objects referenced twice
  are shared through the memo, never copied; dict keys must be atomic values (``str``, ``int``,
  ``float``, ``bytes``, ``bool``, ``None``) so hashing a key cannot recurse through a structure
  like ``(x, x)`` nested 100 times (2**100 steps). The reader never walks what it built, so
  cycles and 100 000-deep nesting cost nothing either.

Every problem is a :class:`WeightsError` naming the file, the instruction and its byte offset.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import WeightsError

MAX_PROTOCOL = 5
_ATOMIC_KEYS = (str, int, float, bytes, bool, type(None))


def describe(value: Any) -> str:
    """A short description of an untrusted value that never recurses or grows with it."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return (
            str(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"
        )
    if isinstance(value, float):
        return repr(value)
    return f"a {type(value).__name__}"


class BadArguments(Exception):
    """Raised by a stand-in (or ``persistent_load``) to refuse what the pickle passed it."""


class _Machine:
    def __init__(
        self,
        data: memoryview,
        position: int,
        path: Path,
        allowed_globals: Mapping[tuple[str, str], Any],
        persistent_load: Callable[[Any], Any],
    ) -> None:
        self.data, self.position, self.path = data, position, path
        self.allowed_globals = allowed_globals
        self.callables = [value for value in allowed_globals.values() if callable(value)]
        self.persistent_load = persistent_load
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.opcode_at = position

    # ------------------------------------------------------------------ helpers
    def fail(self, problem: str) -> WeightsError:
        return WeightsError(f"{self.path}: malformed pickle at byte {self.opcode_at}: {problem}")

    def read(self, n: int) -> memoryview:
        end = self.position + n
        if n < 0 or end > len(self.data):
            raise self.fail(f"needs {n} bytes but only {len(self.data) - self.position} remain")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def line(self) -> str:
        end = bytes(self.data[self.position : self.position + 256]).find(b"\n")
        if end < 0:
            raise self.fail("a module or class name without a newline (or over 255 bytes)")
        return self.text(self.read(end + 1)[:-1], "ascii")

    def text(self, raw: memoryview, encoding: str = "utf-8") -> str:
        try:
            return str(raw, encoding)
        except UnicodeDecodeError:
            raise self.fail(f"text that is not valid {encoding}") from None

    def pop(self) -> Any:
        if not self.stack:
            raise self.fail("the stack is empty")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise self.fail("the stack is empty")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise self.fail("no MARK to pop back to")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def check_key(self, key: Any) -> Any:
        if not isinstance(key, _ATOMIC_KEYS):
            raise self.fail(f"a dict key that is {describe(key)}; only plain values are allowed")
        return key

    def target(self, kind: type, opcode: str) -> Any:
        container = self.top()
        if type(container) is not kind and not (kind is dict and isinstance(container, dict)):
            raise self.fail(f"{opcode} on {describe(container)}; only a {kind.__name__} allowed")
        return container

    def memo_get(self, index: int) -> Any:
        if index not in self.memo:
            raise self.fail(f"memo entry {index} was never stored")
        return self.memo[index]

    def resolve(self, module: str, name: str) -> Any:
        try:
            return self.allowed_globals[(module, name)]
        except KeyError:
            raise WeightsError(
                f"{self.path}: refused to load '{module}.{name}' -- the file asks for something "
                "a plain state dict never needs (it is not a state dict, or it is malicious); "
                "nothing from it was executed"
            ) from None

    def call(self, what: str, func: Callable[..., Any], *args: Any) -> Any:
        try:
            return func(*args)
        except BadArguments as err:
            raise self.fail(f"{what}: {err}") from None

    # ------------------------------------------------------------------ the loop
    def run(self) -> tuple[Any, int]:
        dispatch = _DISPATCH
        while True:
            self.opcode_at = self.position
            code = self.read(1)[0]
            handler = dispatch.get(code)
            if handler is None:
                raise self.fail(f"unsupported pickle instruction 0x{code:02x}")
            if handler is _stop:
                if self.marks or len(self.stack) != 1:
                    raise self.fail("STOP with an unbalanced stack")
                return self.stack[0], self.position
            handler(self)


# --------------------------------------------------------------------------- instructions
def _stop(m: _Machine) -> None:  # handled in the loop
    raise AssertionError


def _proto(m: _Machine) -> None:
    if m.read(1)[0] > MAX_PROTOCOL:
        raise m.fail("an unknown pickle protocol")


def _frame(m: _Machine) -> None:
    m.read(8)  # a length hint only


def _mark(m: _Machine) -> None:
    m.marks.append(m.stack)
    m.stack = []


def _push(value: Any) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        m.stack.append(value() if callable(value) else value)

    return handler


def _number(fmt: str) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        m.stack.append(m.unpack(fmt))

    return handler


def _long(length_fmt: str) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        m.stack.append(int.from_bytes(m.read(m.unpack(length_fmt)), "little", signed=True))

    return handler


def _string(length_fmt: str, decode: bool) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        raw = m.read(m.unpack(length_fmt))
        m.stack.append(m.text(raw) if decode else bytes(raw))

    return handler


def _tuple(m: _Machine) -> None:
    items = tuple(m.pop_mark())  # (pop_mark replaces m.stack: take the items first)
    m.stack.append(items)


def _tuple_n(n: int) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        if len(m.stack) < n:
            raise m.fail("the stack is empty")
        items = tuple(m.stack[len(m.stack) - n :])
        del m.stack[len(m.stack) - n :]
        m.stack.append(items)

    return handler


def _append(m: _Machine) -> None:
    item = m.pop()
    m.target(list, "APPEND").append(item)


def _appends(m: _Machine) -> None:
    items = m.pop_mark()
    m.target(list, "APPENDS").extend(items)


def _setitem(m: _Machine) -> None:
    value, key = m.pop(), m.check_key(m.pop())
    m.target(dict, "SETITEM")[key] = value


def _setitems(m: _Machine) -> None:
    items = m.pop_mark()
    if len(items) % 2:
        raise m.fail("SETITEMS with an odd number of items")
    container = m.target(dict, "SETITEMS")
    for i in range(0, len(items), 2):
        container[m.check_key(items[i])] = items[i + 1]


def _put(fmt: str | None) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        index = len(m.memo) if fmt is None else m.unpack(fmt)
        m.memo[index] = m.top()

    return handler


def _get(fmt: str) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        m.stack.append(m.memo_get(m.unpack(fmt)))

    return handler


def _global(m: _Machine) -> None:
    module = m.line()
    m.stack.append(m.resolve(module, m.line()))


def _stack_global(m: _Machine) -> None:
    name, module = m.pop(), m.pop()
    if not (isinstance(module, str) and isinstance(name, str)):
        raise m.fail("STACK_GLOBAL with a module or name that is not a string")
    m.stack.append(m.resolve(module, name))


def _reduce(m: _Machine) -> None:
    args, func = m.pop(), m.pop()
    if not any(func is allowed for allowed in m.callables):
        raise m.fail(f"REDUCE calls {describe(func)}, which is not an allowed function")
    if type(args) is not tuple:
        raise m.fail(f"REDUCE with arguments that are {describe(args)}, not a tuple")
    m.stack.append(m.call(f"REDUCE of {getattr(func, '__name__', 'a stand-in')}", func, *args))


def _build(m: _Machine) -> None:
    state = m.pop()
    m.target(dict, "BUILD")  # an OrderedDict's attributes (PyTorch's _metadata): dropped
    if not isinstance(state, (dict, type(None))):
        raise m.fail(f"BUILD with a state that is {describe(state)}")


def _persistent(m: _Machine) -> None:
    m.stack.append(m.call("persistent id", m.persistent_load, m.pop()))


def _pop(m: _Machine) -> None:
    m.pop()


def _pop_mark(m: _Machine) -> None:
    m.pop_mark()


_DISPATCH: dict[int, Callable[[_Machine], None]] = {
    0x2E: _stop,  # .
    0x80: _proto,
    0x95: _frame,
    0x28: _mark,  # (
    0x30: _pop,  # 0
    0x31: _pop_mark,  # 1
    0x4E: _push(None),  # N
    0x88: _push(True),
    0x89: _push(False),
    0x4A: _number("<i"),  # J BININT
    0x4B: _number("<B"),  # K BININT1
    0x4D: _number("<H"),  # M BININT2
    0x47: _number(">d"),  # G BINFLOAT
    0x8A: _long("<B"),  # LONG1
    0x8B: _long("<i"),  # LONG4 (a negative length is refused by read)
    0x58: _string("<I", True),  # X BINUNICODE
    0x8C: _string("<B", True),  # SHORT_BINUNICODE
    0x8D: _string("<Q", True),  # BINUNICODE8
    0x55: _string("<B", True),  # U SHORT_BINSTRING (Python 2 str)
    0x54: _string("<i", True),  # T BINSTRING
    0x43: _string("<B", False),  # C SHORT_BINBYTES
    0x42: _string("<I", False),  # B BINBYTES
    0x8E: _string("<Q", False),  # BINBYTES8
    0x29: _push(tuple),  # ) EMPTY_TUPLE
    0x74: _tuple,  # t
    0x85: _tuple_n(1),
    0x86: _tuple_n(2),
    0x87: _tuple_n(3),
    0x5D: _push(list),  # ] EMPTY_LIST
    0x61: _append,  # a
    0x65: _appends,  # e
    0x7D: _push(dict),  # } EMPTY_DICT
    0x73: _setitem,  # s
    0x75: _setitems,  # u
    0x71: _put("<B"),  # q BINPUT
    0x72: _put("<I"),  # r LONG_BINPUT
    0x94: _put(None),  # MEMOIZE
    0x68: _get("<B"),  # h BINGET
    0x6A: _get("<I"),  # j LONG_BINGET
    0x63: _global,  # c
    0x93: _stack_global,
    0x52: _reduce,  # R
    0x62: _build,  # b
    0x51: _persistent,  # Q BINPERSID
}


def load_pickle(
    data: memoryview,
    path: Path,
    allowed_globals: Mapping[tuple[str, str], Any],
    persistent_load: Callable[[Any], Any],
    start: int = 0,
) -> tuple[Any, int]:
    """Run the pickle that starts at ``data[start]``; returns the object and the offset after it.

    ``GLOBAL module name`` is answered from ``allowed_globals[(module, name)]`` and refused when
    absent; ``REDUCE`` may call only the callables among those values; ``persistent_load(pid)``
    answers ``BINPERSID``. Stand-ins and ``persistent_load`` refuse bad arguments by raising
    :class:`BadArguments`, which becomes a :class:`WeightsError` naming the file and offset.
    """
    return _Machine(data, start, path, allowed_globals, persistent_load).run()
