"""A small code location for the catalog's pages: an asset with a function (Materialize runs it), the external
table it reads, and an asset of another team; owners, tags (one a label), kinds, a group, code references and
typed definition metadata, as a data team writes them."""

from assetpipe import (
    AssetSpec,
    CodeReferencesMetadataValue,
    Definitions,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    UrlCodeReference,
    asset,
)


@asset(
    key=["shop", "orders"],
    deps=[["shop", "raw_orders"]],
    owners=["ana@example.com", "team:sales"],
    tags={"domain": "sales", "pii": ""},
    kinds={"python", "duckdb"},
    group_name="sales",
    code_version="1",
    description="Every **order** the shop took, one row each.",
    metadata={
        "dagster/column_schema": TableSchema(
            [
                TableColumn("id", "int", "the order", TableColumnConstraints(nullable=False, unique=True)),
                TableColumn("total", "float", "in euros", TableColumnConstraints(other=("> 0",))),
            ]
        ),
        "runbook": MetadataValue.url("https://wiki.example.com/orders"),
        "notes": MetadataValue.md("Reloaded *hourly*; see the [runbook](https://wiki.example.com/orders)."),
        "dagster/code_references": CodeReferencesMetadataValue(
            [UrlCodeReference("https://git.example.com/shop/blob/main/orders.py#L10", "orders.py")]
        ),
    },
)
def orders() -> MaterializeResult:
    return MaterializeResult(metadata={"dagster/row_count": 4242, "amount": 17.5})


defs = Definitions(
    assets=[
        orders,
        AssetSpec(["shop", "raw_orders"], owners=["data@example.com"], tags={"tier": "bronze"}, kinds={"s3"}),
        AssetSpec(["finance", "ledger"], owners=["team:finance"], tags={"domain": "finance"}, group_name="finance"),
    ]
)
