"""Run the lpgnet command line and kill it with SIGKILL (kill -9: no cleanup, no
``finally``) just before its K-th rename of a file or folder into ROOT -- the moment a
finished file would appear. K = 0 never kills; the renames are counted on stderr.

    python tests/killer.py K ROOT lpgnet-arguments...

Every file lpgnet writes goes through a rename (lpgnet.files.atomic_path), so stopping
before each of them visits every state a crash can leave.
"""

from __future__ import annotations

import os
import signal
import sys

k, root, args = int(sys.argv[1]), os.path.realpath(sys.argv[2]), sys.argv[3:]
renames = 0


def dying(real):
    def rename(src, dst, *a, **kw):
        global renames
        if os.path.realpath(os.fspath(dst)).startswith(root):
            renames += 1
            if renames == k:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *a, **kw)

    return rename


os.replace, os.rename = dying(os.replace), dying(os.rename)

from lpgnet.cli import main  # noqa: E402  (after the patch: every module sees it)

code = main(args)
print(f"renames: {renames}", file=sys.stderr)
sys.exit(code)
