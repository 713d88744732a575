"""The default serializer of the faster-fifo compatible queue: multiprocessing's ForkingPickler,
as faster-fifo uses, at the cost of plain pickle when that gives the same bytes.

ForkingPickler.dumps builds a pickler and copies its dispatch table on every call: 6-8 times the
time of pickle.dumps for a small tuple (`python -m timeit -s "from multiprocessing.reduction import
ForkingPickler as F; x = (1, 2, 3)" "F.dumps(x)"` against `pickle.dumps(x)`: 28.1 against 4.25 µs on
this 2-core machine at load 25, 9.2 against 1.1-1.4 µs at a lighter load). Its table adds to
copyreg's only the reducers registered with ForkingPickler.register: multiprocessing's own (methods,
partials, sockets, connections), and whatever other packages register, such as torch.multiprocessing
for tensors shared through shared memory. So plain pickle.dumps is used while every registered
reducer is multiprocessing's own: it pickles methods and partials the same way and refuses sockets
and connections, which then go through ForkingPickler. Once another package registers a reducer,
every object goes through ForkingPickler, as with faster-fifo.
"""

from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler
from typing import Any

_ForkingPickler = ForkingPickler
_plain_dumps = pickle.dumps
_checked = [-1, False]  # [number of registered reducers checked, plain pickle is equivalent]


def _plain_is_equivalent() -> bool:
    reducers = _ForkingPickler._extra_reducers  # type: ignore[attr-defined]
    if len(reducers) != _checked[0]:
        _checked[1] = all(
            (getattr(reducer, "__module__", None) or "").startswith("multiprocessing")
            for reducer in list(reducers.values())
        )
        _checked[0] = len(reducers)
    return bool(_checked[1])


def default_dumps(obj: Any) -> Any:
    """`obj` serialized as ForkingPickler.dumps(obj) would: bytes, or ForkingPickler's buffer."""
    if _plain_is_equivalent():
        try:
            return _plain_dumps(obj)
        except Exception:
            pass  # a socket or connection: ForkingPickler's reducers handle it
    return _ForkingPickler.dumps(obj)


default_loads = _ForkingPickler.loads
