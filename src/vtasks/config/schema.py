"""The JSON Schema of ``vtasks.yml``, generated from the models (for editors and the Helm chart).

``python -m vtasks.config.schema > config/vtasks.schema.json`` writes it; a test keeps the committed
file in step with the models.
"""

from __future__ import annotations

import json

from vtasks.config.models import Topology


def schema_text() -> str:
    schema = Topology.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vtasks.yml"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(schema_text(), end="")
