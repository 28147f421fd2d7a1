"""Tables out as JSON, CSV or Parquet: the same rows, whichever an analyst's tool reads best."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Literal

from fastapi.responses import Response

TableFormat = Literal["json", "csv", "parquet"]


def table_response(rows: Sequence[dict[str, Any]], fmt: TableFormat, name: str, **meta: Any) -> Response:
    """`meta` (the query's parameters) goes into the JSON body, and into Parquet's schema metadata."""
    if fmt == "json":
        body = json.dumps({**meta, "rows": list(rows)}, separators=(",", ":"), ensure_ascii=False, default=str)
        return Response(body, media_type="application/json")
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    if fmt == "csv":
        out = io.StringIO()
        columns = list(rows[0]) if rows else []
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        # A byte-order mark so spreadsheet programs read Vietnamese names as UTF-8.
        return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pa.Table.from_pylist(list(rows))
    table = table.replace_schema_metadata({"smartbus": json.dumps(meta, default=str)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return Response(sink.getvalue(), media_type="application/vnd.apache.parquet", headers=headers)
