"""The description every SavedModel export carries beside it: ``<export dir>/t2i_export.json``."""

from __future__ import annotations

import json
import os
from typing import Any

DESCRIPTION_FILE = "t2i_export.json"


def write_export_description(path: str, description: dict[str, Any]) -> dict[str, Any]:
    """Save ``description`` (model, signatures, noise rule, ...) as JSON in the export dir ``path``; returns it."""
    with open(os.path.join(path, DESCRIPTION_FILE), "w") as f:
        json.dump(description, f, indent=1)
    return description
