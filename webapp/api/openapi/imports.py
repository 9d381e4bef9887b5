"""The bulk import operation: one path, three request media types (a JSON list, a CSV body, a CSV upload)."""
from __future__ import annotations

from ...domain.imports import CSV_COLUMNS, MAX_CELL_CHARS, MAX_IMPORT_ROWS, MAX_VOLUMES
from .builders import JSON, MULTIPART, array, created, errors, integer, obj, operation, ref, string

CSV = "text/csv"
CSV_EXAMPLE = ",".join(CSV_COLUMNS) + "\r\n10.0.0.5,admin,s3cret,CORP,C:\\:40;D:\\:100\r\n10.0.0.6,root,pw,,C:\\:80\r\n"

DESCRIPTION = (
    "Creates every workload of the body in one transaction, or none. The body is a JSON list of workload inputs "
    f"(each as `POST /api/v1/workloads` takes), or a CSV file (`{CSV}`, or the multipart field `file`): UTF-8 "
    f"(a BOM and CRLF allowed), the header `{','.join(CSV_COLUMNS)}` (any order and case), one workload a line, "
    "each cell trimmed, blank lines skipped; `domain` may be empty; `volumes` is `NAME:GiB` separated by `;`, e.g. "
    f"`C:\\:40;D:\\:100` (at most {MAX_VOLUMES}). At most {MAX_IMPORT_ROWS} rows (413 `too_large` above), "
    f"{MAX_CELL_CHARS} characters a cell. A refused body stores nothing and answers 422 with `fields` keyed "
    "`rows.<n>.<field>`, rows counted from 0 (the first line after the CSV header is row 0): a CSV row's fields "
    "are its columns (`rows.3.ip`, `rows.3.volumes`: the message names the volume), a JSON row's the input's paths "
    "(`rows.3.credentials.username`, `rows.3.storage.1.size`); `rows.<n>` alone is the whole row (e.g. a wrong "
    "number of values); `file` or `header` is the file (empty, not UTF-8, a missing or unknown column). An IP "
    "twice in the body is an error of the later row (naming the earlier one), an IP already stored one of its row. "
    "Audited as one `workload.import` entry with the count."
)


def import_paths() -> dict:
    body = {"required": True, "content": {
        JSON: {"schema": array(ref("WorkloadInput"), minItems=1, maxItems=MAX_IMPORT_ROWS)},
        CSV: {"schema": string(description="The CSV file.", examples=[CSV_EXAMPLE])},
        MULTIPART: {"schema": obj({"file": string(contentMediaType=CSV, description="The CSV file.")}, closed=False),
                    "encoding": {"file": {"contentType": f"{CSV}, text/plain, application/octet-stream"}}},
    }}
    return {
        "/api/v1/workloads/import": {
            "post": operation("importWorkloads", "workloads", "Import workloads (CSV or a JSON list)", {
                "201": created("All were created (`Location`: the workloads list).",
                               obj({"created": integer(minimum=1, description="How many workloads.")})),
                **errors(400, 409, 413, 422, c409=["duplicate_ip"],
                         t400="A JSON body that is not valid JSON (`bad_json`).",
                         t409="Another request stored one of the IPs meanwhile (`duplicate_ip`): nothing was "
                              "imported.",
                         t413=f"More than {MAX_IMPORT_ROWS} rows, or a request over 2 MiB (`too_large`).",
                         t422="Some rows or the file are refused; `fields` says which (`rows.<n>.<field>`).")},
                body=body, description=DESCRIPTION),
        },
    }
