"""Wire models of the REST API that pyiceberg does not provide in a server-friendly shape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import SortOrder
from pyiceberg.table.update import TableRequirement, TableUpdate


class WireModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class StrictWireModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class CreateNamespaceRequest(StrictWireModel):
    namespace: list[str]
    properties: dict[str, str] = Field(default_factory=dict)


class UpdateNamespacePropertiesRequest(StrictWireModel):
    removals: list[str] = Field(default_factory=list)
    updates: dict[str, str] = Field(default_factory=dict)


class TableIdentifierModel(WireModel):
    namespace: list[str]
    name: str


class CreateTableRequest(WireModel):
    name: str
    location: str | None = None
    table_schema: Schema = Field(alias="schema")
    partition_spec: PartitionSpec | None = Field(None, alias="partition-spec")
    write_order: SortOrder | None = Field(None, alias="write-order")
    stage_create: bool = Field(False, alias="stage-create")
    properties: dict[str, str] = Field(default_factory=dict)


class RegisterTableRequest(WireModel):
    name: str
    metadata_location: str = Field(alias="metadata-location")
    overwrite: bool = False


class CommitTableRequest(WireModel):
    """The per-table commit body. ``identifier`` is optional: the Java client omits it."""

    identifier: TableIdentifierModel | None = None
    requirements: list[TableRequirement] = Field(default_factory=list)
    updates: list[TableUpdate] = Field(default_factory=list)


class CommitTransactionRequest(WireModel):
    table_changes: list[CommitTableRequest] = Field(alias="table-changes", min_length=1)


class RenameTableRequest(WireModel):
    source: TableIdentifierModel
    destination: TableIdentifierModel


class ReportMetricsRequest(WireModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")
    report_type: Literal["scan-report", "commit-report"] = Field(alias="report-type")
    table_name: str = Field(alias="table-name")
    snapshot_id: int | None = Field(None, alias="snapshot-id")
    metrics: dict[str, Any] = Field(default_factory=dict)
