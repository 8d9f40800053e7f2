"""The desktop app (Qt only).

Python < 3.12 work-around, applied on import of any app module: shiboken6 6.12 (PySide6 6.12) returns
None, True and False from Qt calls without taking a new reference, which is only correct where those
objects are immortal (Python 3.12+, PEP 683). On 3.11 every void Qt call (processEvents, update, emit, a
QTimer start...) drops one reference to None, and after some 10^5 calls Python aborts with "Fatal Python
error: none_dealloc" (the endurance benchmark hit it after about 2000 frames). Giving these singletons
a huge reference count makes them immortal in practice, as 3.12 does.
"""

import sys

if sys.version_info < (3, 12):
    import ctypes

    for _obj in (None, True, False, NotImplemented, Ellipsis):
        ctypes.c_ssize_t.from_address(id(_obj)).value = 1 << 60  # ob_refcnt is a PyObject's first field
    del _obj
