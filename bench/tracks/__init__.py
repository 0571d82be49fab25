"""Per-track evaluation (``run_cell(cell, device) -> (metrics, per_sample, notes)``) and tidy rows
(``rows(record) -> list[dict]``), as lazy targets so importing this package is cheap."""

TRACKS = {"classifier": "bench.tracks.classifier:run_cell", "faces": "bench.tracks.faces:run_cell"}
TIDY = {"classifier": "bench.report.tidy:classifier_rows", "faces": "bench.tracks.faces_report:tidy_rows"}
