"""Job configuration: one typed object built from the command line, passed to every operator."""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from contracts.contract import DEFAULT_CONTRACT
from jobs.policy import Policy, RulePolicy


@dataclass(frozen=True)
class JobConfig:
    events: str | None = None
    events_directory: bool = False  # file mode: --events may be a directory (jobs.file_input)
    out_dir: str = "out"
    state_dir: str | None = None
    contract_path: str = str(DEFAULT_CONTRACT)
    threshold: Decimal = Decimal("1000.00")
    auto_hold: bool = True
    max_out_of_orderness_ms: int = 30_000
    idle_timeout_ms: int = 5_000
    dedup_ttl_ms: int = 7 * 24 * 3600 * 1000
    qualified_ttl_ms: int = 7 * 24 * 3600 * 1000
    parallelism: int = 1
    policy: str = "rules"
    shadow_policy: str | None = None
    global_max_actions_per_minute: int | None = None
    python_execution_mode: str = "process"  # "thread" (PyFlink embedded in the JVM) or "process"
    trace_log: bool | None = None  # log every trace (jobs.runtime.metrics); None: in Kafka mode only
    # Kafka mode (on when bootstrap_servers is set)
    bootstrap_servers: str | None = None
    group_id: str = "streaming-agent"
    topic_pattern: str = r"cdc\..*|risk\.order_threshold_breach"
    startup_mode: str = "earliest-offset"
    checkpoint_interval_ms: int | None = None  # None: the cluster's config.yaml under `flink run`, else 2000
    checkpoint_dir: str | None = None
    from_checkpoint: str | None = None
    jars: tuple[str, ...] = ()
    jvm_prefilter: bool = True  # Kafka mode: settle valid non-actionable CDC records on the JVM (jobs.prefilter)

    @property
    def kafka_mode(self) -> bool:
        return bool(self.bootstrap_servers)

    @property
    def trace_log_on(self) -> bool:
        return self.trace_log if self.trace_log is not None else self.kafka_mode

    @property
    def state(self) -> Path:
        return Path(self.state_dir) if self.state_dir else Path(self.out_dir) / "state"

    def load_policy(self) -> Policy:
        """`rules` (the default) or `package.module:ClassName` of any class with the Policy shape."""
        return load_policy(self.policy, self.contract_path)

    def load_shadow_policy(self) -> Policy | None:
        """The candidate of shadow mode (`--shadow-policy`), or None."""
        return load_policy(self.shadow_policy, self.contract_path) if self.shadow_policy else None


def load_policy(spec: str, contract_path: str | None = None) -> Policy:
    """Instantiate a policy with no arguments; a class whose constructor takes `contract_path` gets the
    job's contract (the LLM policy builds its prompt and validates against it)."""
    if spec == "rules":
        return RulePolicy()
    module, _, name = spec.partition(":")
    cls = getattr(importlib.import_module(module), name)
    try:
        takes_contract = "contract_path" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        takes_contract = False
    return cls(contract_path=contract_path) if takes_contract and contract_path else cls()
