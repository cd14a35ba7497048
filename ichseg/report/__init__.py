"""The study's report layer: collect result folders into tables and figures (used by the notebooks).

    from ichseg.report import load_study, evaluation_table, table1, table2, convergence_figure
    study = load_study("results/smoke")          # raises StaleResultsError on mismatched stamps
    evals = evaluation_table(study)               # one row per method x seed x dataset
    table1(evals, study.profile)                  # paper's numbers and ours in separate columns

Logic lives here and is unit-tested; the notebooks under ``book/notebooks`` only call it.
"""

from .collect import (
    STAMPS_DIR,
    STUDY_FILE,
    TIMINGS_FILE,
    StaleResultsError,
    Study,
    curves_table,
    evaluation_table,
    load_study,
    metrics_frame,
    protocol_breakdown,
    provenance_table,
    qualitative,
    read_stamp,
    read_timings,
    run_set_description,
    slices_table,
    study_banner,
    study_stamp,
)
from .claims import comparison_claims, convergence_claim, convergence_table
from .figures import convergence_figure, qualitative_figure, read_sampling_bench, sampling_figure, training_figure
from .paper import DATASET_ORDER, METHOD_ORDER, TABLE1_ORDER, VARIANT_ORDER, dataset_title, method_title, paper_numbers
from .runs import run_summary
from .stats import ci_band, format_mean_ci, mean_ci, summarise
from .scale import budgets_sentence, comparability, scale_facts
from .verdict import claim_verdicts, headline_profile, profiles_table, verdict_markdown
from .tables import (ALL_EMPTY_COLUMN, LESION_DICE, PAPER_DICE, PAPER_HEAD, PAPER_IOU, STRICT_COLUMNS, VOLUME_DICE,
                     contrast_table, display_table, format_value, headline, headline_numbers, ours_label, patient_table,
                     protocol_table, strict_table, table1, table2, timings_table)

__all__ = [
    "budgets_sentence",
    "claim_verdicts",
    "comparability",
    "display_table",
    "format_value",
    "headline_profile",
    "profiles_table",
    "run_set_description",
    "scale_facts",
    "verdict_markdown",
    "ALL_EMPTY_COLUMN",
    "LESION_DICE",
    "PAPER_DICE",
    "PAPER_HEAD",
    "PAPER_IOU",
    "VOLUME_DICE",
    "DATASET_ORDER",
    "METHOD_ORDER",
    "TABLE1_ORDER",
    "STAMPS_DIR",
    "STRICT_COLUMNS",
    "STUDY_FILE",
    "TIMINGS_FILE",
    "StaleResultsError",
    "Study",
    "VARIANT_ORDER",
    "ci_band",
    "comparison_claims",
    "contrast_table",
    "patient_table",
    "convergence_claim",
    "convergence_table",
    "convergence_figure",
    "curves_table",
    "dataset_title",
    "evaluation_table",
    "format_mean_ci",
    "headline",
    "headline_numbers",
    "method_title",
    "metrics_frame",
    "load_study",
    "mean_ci",
    "ours_label",
    "paper_numbers",
    "protocol_breakdown",
    "protocol_table",
    "provenance_table",
    "qualitative",
    "qualitative_figure",
    "read_sampling_bench",
    "read_stamp",
    "read_timings",
    "run_summary",
    "sampling_figure",
    "slices_table",
    "strict_table",
    "study_banner",
    "study_stamp",
    "summarise",
    "table1",
    "table2",
    "timings_table",
    "training_figure",
]
