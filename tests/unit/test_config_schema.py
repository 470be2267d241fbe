from pathlib import Path

import yaml

from vtasks.config.models import Topology
from vtasks.config.schema import schema_text

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_committed_schema_matches_the_models():
    assert (CONFIG / "vtasks.schema.json").read_text() == schema_text(), (
        "regenerate: python -m vtasks.config.schema > config/vtasks.schema.json"
    )


def test_the_commented_example_is_a_valid_topology():
    topology = Topology.model_validate(yaml.safe_load((CONFIG / "vtasks.yml").read_text()))
    assert [pool.name for pool in topology.workers] == ["default", "reports"]
    assert topology.workers[0].queues == ("high", "default")
