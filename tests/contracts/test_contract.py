
import pytest

from contracts.contract import load_contract


def test_seed_contract_loads_typed():
    c = load_contract()
    assert c.name == "streaming_agent@v1"
    assert [i.citation for i in c.inputs] == ["risk.order_threshold_breach@v3", "cdc.public.orders@v2"]
    assert c.input_for("cdc.public.orders", "v2").schema_ref == "json://debezium/order@v2"
    assert c.input_for("cdc.public.orders", "v1") is None
    g = c.governance
    assert g.pii_fields == ["email", "phone", "ssn_last4"]
    assert g.sensitivity_ceiling == "Confidential" and g.max_actions_per_minute == 120
    assert g.dlq_topic == "ops.agent_dlq"
    assert c.output.tools == ["CreateTicket", "PlacePaymentHold", "SendNotice"]
    assert c.token_regex.fullmatch("tok_abcdefgh") and not c.token_regex.fullmatch("tok_short")


def test_every_input_schema_file_exists_and_parses():
    c = load_contract()
    for spec in c.inputs:
        assert c.load_schema(spec)


def test_contract_rejects_unknown_keys(tmp_path):
    src = load_contract().model_dump(by_alias=True)
    import yaml
    src.pop("base_dir")
    src["surprise"] = 1
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(src))
    with pytest.raises(Exception):
        load_contract(p)


def test_tools_by_input_is_typed_and_checked(tmp_path):
    import yaml
    c = load_contract()
    assert c.output.tools_by_input == {"risk.order_threshold_breach@v3": ["CreateTicket", "PlacePaymentHold"],
                                       "cdc.public.orders@v2": ["SendNotice"]}
    assert c.tools_for("cdc.public.orders@v2") == ["SendNotice"]
    assert c.tools_for("cdc.public.orders@v9") == []  # not listed: no tool (fail closed)
    for bad in ({"cdc.public.orders@v2": ["RefundOrder"]},      # not a tool of output.tools
                {"cdc.public.customers@v1": ["SendNotice"]}):   # not an input
        src = c.model_dump(by_alias=True)
        src.pop("base_dir")
        src["output"]["tools_by_input"] = bad
        p = tmp_path / "c.yaml"
        p.write_text(yaml.safe_dump(src))
        with pytest.raises(Exception):
            load_contract(p)
