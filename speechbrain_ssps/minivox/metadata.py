"""Writing of the MiniVox metadata: CSV tables and the JSON marker.

Example
-------
>>> _fmt(1.0 / 3.0), _fmt(16000.0)
('0.333333', '16000')
"""

import csv
import json
import os
from pathlib import Path
from typing import Dict, List, Sequence


def _fmt(value: float) -> str:
    """Format a float compactly and deterministically."""
    return f"{value:.6g}"


def _write_csv(path: Path, header: Sequence[str], rows: List[Dict]) -> None:
    """Write dict rows with a fixed header."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(header))
        writer.writeheader()
        writer.writerows(rows)


def _write_json(path: Path, content: Dict) -> None:
    """Write JSON atomically (a temporary file renamed over ``path``)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(content, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
