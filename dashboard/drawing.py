"""Pictures and the board report drawn in a child process.

vl-convert draws a chart with a JavaScript engine, and Typst typesets the report with its
fonts. Both keep what they loaded for the next call: in the server, the first PNG added about
70 MB of resident memory and the first report about 60 MB more, for as long as it ran
(docs/performance.md). A child process for each drawing gives it all back. It costs about
0.3 s more than a second drawing in the server, on a button press that makes a file.

    python -m dashboard.drawing      (a request as JSON on stdin; the bytes on stdout)
"""

from __future__ import annotations

import json
import subprocess  # nosec B404
import sys
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 300


class DrawingFailed(RuntimeError):
    """The child could not draw: its last line of error says why."""


def vegalite(spec: dict[str, Any], *, fmt: str, scale: float = 2) -> bytes:
    """A Vega-Lite spec as PNG (``scale`` times the pixels) or SVG."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"unknown picture format {fmt!r}")
    return _draw({"kind": "vegalite", "fmt": fmt, "scale": scale, "spec": spec})


def typst_pdf(source: str, *, root: str, inputs: dict[str, str], pictures: dict[str, dict[str, Any]] | None = None) -> bytes:
    """A Typst source file (paths under ``root``) compiled to PDF, ``inputs`` as its sys.inputs;
    ``pictures`` (file name under ``root``: Vega-Lite spec) drawn as SVG first, in the same
    child (one process for a whole report)."""
    return _draw({"kind": "typst", "source": source, "root": root, "inputs": inputs, "pictures": pictures or {}})


def _draw(request: dict[str, Any]) -> bytes:
    done = subprocess.run(  # nosec B603  # our own interpreter and module
        [sys.executable, "-m", "dashboard.drawing"], input=json.dumps(request).encode("utf-8"),
        capture_output=True, timeout=TIMEOUT_SECONDS, check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DrawingFailed(lines[-1] if lines else f"the drawing process ended with {done.returncode}")
    return done.stdout


def _serve(request: dict[str, Any]) -> bytes:
    if request["kind"] == "vegalite":
        import vl_convert

        if request["fmt"] == "png":
            png: bytes = vl_convert.vegalite_to_png(request["spec"], scale=request["scale"])
            return png
        svg: str = vl_convert.vegalite_to_svg(request["spec"])
        return svg.encode("utf-8")
    if request["kind"] == "typst":
        import typst

        if request["pictures"]:
            import vl_convert

            root = Path(request["root"]).resolve()
            for name, spec in request["pictures"].items():
                target = (root / name).resolve()
                if target.parent != root:  # a bare file name, in the report's own folder
                    raise ValueError(f"picture {name!r} outside the report's folder")
                target.write_text(vl_convert.vegalite_to_svg(spec), encoding="utf-8")
        pdf: bytes = typst.compile(request["source"], root=request["root"], sys_inputs=request["inputs"])
        return pdf
    raise ValueError(f"unknown drawing {request['kind']!r}")


if __name__ == "__main__":
    sys.stdout.buffer.write(_serve(json.loads(sys.stdin.buffer.read())))
