"""Local stand-ins for Glue's ML transforms (``awsglueml``): FillMissingValues and FindMatches.

Glue runs both as managed ML services (FindMatches needs a transform trained on labelled
examples in the Glue console); neither exists outside AWS. These functions give scripts that
call them a local, deterministic behaviour of the same shape. They approximate, not reproduce,
Glue's models: results differ from what AWS would return for the same data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    ByteType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    NumericType,
    ShortType,
    StringType,
    StructField,
    StructType,
)

from jobs.glue import ERROR_COLUMN
from jobs.glue.ops._frame import TEMP_PREFIX, col, data_fields, good_rows, has_errors, is_good

log = logging.getLogger(__name__)

_INTEGRAL = (ByteType, ShortType, IntegerType, LongType)
MAX_CATEGORIES = 32
"""String feature columns with more distinct values than this are not used (names, ids, free text)."""


# --------------------------------------------------------------------------------------------
# FillMissingValues
# --------------------------------------------------------------------------------------------


def fill_missing_values(df: DataFrame, missing_values_column: str, output_column: str | None = None) -> DataFrame:
    """Add ``output_column`` (default ``<missing_values_column>_filled``): the column's value, or an
    estimate where it is missing (null, or an empty string for string columns).

    The estimate comes from a Spark ML decision tree trained on the records where the value is
    present: a ``DecisionTreeRegressor`` for a numeric column (rounded for integral types), a
    ``DecisionTreeClassifier`` for a string or boolean column. Features are the other top-level
    columns: numbers and booleans (nulls replaced by the training median), and strings with at
    most 32 distinct values and at most one per two training records (one category each, null
    its own). With no usable feature, the estimate is the median (numbers) or the most frequent
    value (strings, booleans).

    Glue's FillMissingValues uses its own models ("such as linear regression and random forest");
    this is a local approximation with the same interface, deterministic for the same input.
    Error records get a null ``output_column``.
    """
    fields = {f.name: f for f in data_fields(df)}
    target = fields.get(missing_values_column)
    if target is None:
        raise ValueError(f"FillMissingValues: column {missing_values_column!r} not found; available: {sorted(fields)}")
    out_name = output_column or f"{missing_values_column}_filled"
    tdt = target.dataType
    numeric = isinstance(tdt, NumericType)
    if not numeric and not isinstance(tdt, (StringType, BooleanType)):
        raise ValueError(
            f"FillMissingValues: column {missing_values_column!r} is {tdt.simpleString()}; "
            "only numeric, string and boolean columns can be filled"
        )
    value = col(missing_values_column)
    present = value.isNotNull()
    if isinstance(tdt, StringType):
        present = present & (F.trim(value) != "")
    feature_fields = [f for name, f in fields.items() if name not in (missing_values_column, out_name)]
    scored = _with_predictions(df, missing_values_column, tdt, feature_fields, present)
    prediction = col(_PREDICTION)
    if isinstance(tdt, _INTEGRAL):
        prediction = F.round(prediction)
    filled = F.when(present, value).otherwise(prediction.cast(tdt))
    cols = [col(name) for name in fields if name != out_name]
    cols.append(F.when(is_good(df), filled).alias(out_name))
    if has_errors(df):
        cols.append(col(ERROR_COLUMN))
    return scored.select(*cols)


_PREDICTION = TEMP_PREFIX + "prediction"


def _usable_features(training: DataFrame, features: Sequence[StructField], n_train: int) -> tuple[list[str], list[str]]:
    """(numeric/boolean feature names, categorical string feature names)."""
    numeric = [f.name for f in features if isinstance(f.dataType, (NumericType, BooleanType))]
    strings = [f.name for f in features if isinstance(f.dataType, StringType)]
    if not strings:
        return numeric, []
    row = training.agg(*[F.countDistinct(col(s)).alias(f"c{i}") for i, s in enumerate(strings)]).first()
    # a column with about one value per record (names, ids) says nothing and the tree cannot bin it
    limit = min(MAX_CATEGORIES, n_train // 2)
    categorical = [s for i, s in enumerate(strings) if row is not None and 1 <= int(row[f"c{i}"]) <= limit]
    return numeric, categorical


def _with_predictions(
    df: DataFrame, target: str, tdt: DataType, features: Sequence[StructField], present: Column
) -> DataFrame:
    """``df`` plus a ``__lf_prediction`` column holding the model's estimate for every row."""
    numeric_target = isinstance(tdt, NumericType)
    pred_type: DataType = DoubleType() if numeric_target else StringType()
    train_flag = TEMP_PREFIX + "train"
    flagged = df.withColumn(train_flag, is_good(df) & present)
    training = flagged.where(col(train_flag))
    n_train = training.count()
    if n_train == 0:
        log.warning("FillMissingValues: no record has a %r value to learn from; nothing is filled", target)
        return df.withColumn(_PREDICTION, F.lit(None).cast(pred_type))
    numeric, categorical = _usable_features(training, features, n_train)
    if n_train < 2 or not (numeric or categorical):
        return df.withColumn(_PREDICTION, F.lit(_fallback(training, target, numeric_target)).cast(pred_type))

    from pyspark.ml import Pipeline
    from pyspark.ml.classification import DecisionTreeClassifier
    from pyspark.ml.feature import IndexToString, StringIndexer, VectorAssembler
    from pyspark.ml.regression import DecisionTreeRegressor

    medians = _medians(training, numeric)
    num_names = [f"{TEMP_PREFIX}n{i}" for i in range(len(numeric))]
    cat_names = [f"{TEMP_PREFIX}c{i}" for i in range(len(categorical))]
    idx_names = [f"{TEMP_PREFIX}ci{i}" for i in range(len(categorical))]
    label = TEMP_PREFIX + "label"
    feature_cols = [
        F.coalesce(col(n).cast(DoubleType()), F.lit(medians[n])).alias(t)
        for n, t in zip(numeric, num_names, strict=True)
    ] + [col(n).alias(t) for n, t in zip(categorical, cat_names, strict=True)]
    prepared = flagged.select("*", *feature_cols, col(target).cast(pred_type).alias(label))
    vec = TEMP_PREFIX + "features"
    feature_stages: list[Any] = []
    if categorical:
        feature_stages.append(StringIndexer(inputCols=cat_names, outputCols=idx_names, handleInvalid="keep"))
    feature_stages.append(VectorAssembler(inputCols=num_names + idx_names, outputCol=vec, handleInvalid="keep"))
    featurizer = Pipeline(stages=feature_stages).fit(prepared.where(col(train_flag)))
    featurized = featurizer.transform(prepared)
    train_rows = featurized.where(col(train_flag))
    max_bins = 32
    if categorical:
        counts = training.agg(*[F.countDistinct(col(c)) for c in categorical]).first()
        if counts is not None:
            max_bins = max(32, *(int(c) + 2 for c in counts))
    scored: DataFrame
    if numeric_target:
        regressor = DecisionTreeRegressor(
            featuresCol=vec, labelCol=label, predictionCol=_PREDICTION, maxDepth=5, maxBins=max_bins, seed=0
        )
        scored = regressor.fit(train_rows).transform(featurized)
    else:
        label_idx = TEMP_PREFIX + "label_idx"
        labeler = StringIndexer(inputCol=label, outputCol=label_idx, stringOrderType="alphabetAsc").fit(train_rows)
        classifier = DecisionTreeClassifier(
            featuresCol=vec,
            labelCol=label_idx,
            predictionCol=TEMP_PREFIX + "pred_idx",
            rawPredictionCol=TEMP_PREFIX + "raw",
            probabilityCol=TEMP_PREFIX + "prob",
            maxDepth=5,
            maxBins=max_bins,
            seed=0,
        )
        model = classifier.fit(labeler.transform(train_rows))
        back = IndexToString(inputCol=TEMP_PREFIX + "pred_idx", outputCol=_PREDICTION, labels=labeler.labels)
        scored = back.transform(model.transform(featurized))
    log.info("FillMissingValues: decision tree on %d records, features %s", n_train, [*numeric, *categorical])
    return scored.select(*[col(c) for c in df.columns], col(_PREDICTION).cast(pred_type).alias(_PREDICTION))


def _medians(training: DataFrame, names: Sequence[str]) -> dict[str, float]:
    if not names:
        return {}
    exprs = [F.percentile_approx(col(n).cast(DoubleType()), 0.5).alias(f"m{i}") for i, n in enumerate(names)]
    row = training.agg(*exprs).first()
    out: dict[str, float] = {}
    for i, n in enumerate(names):
        v = row[f"m{i}"] if row is not None else None
        out[n] = float(v) if v is not None else 0.0
    return out


def _fallback(training: DataFrame, target: str, numeric_target: bool) -> float | str | None:
    if numeric_target:
        row = training.agg(F.percentile_approx(col(target).cast(DoubleType()), 0.5)).first()
        return float(row[0]) if row is not None and row[0] is not None else None
    top = (
        training.groupBy(col(target).cast(StringType()).alias("v")).count().orderBy(F.desc("count"), F.asc("v")).first()
    )
    return str(top["v"]) if top is not None else None


# --------------------------------------------------------------------------------------------
# FindMatches
# --------------------------------------------------------------------------------------------


def find_matches(
    df: DataFrame,
    key_columns: Sequence[str] | None,
    threshold: float = 0.85,
    *,
    primary_key: str | None = None,
    compute_confidence: bool = False,
    block_prefix: int = 3,
    max_block_size: int = 1000,
) -> DataFrame:
    """Group records that refer to the same entity: adds ``match_id`` (long) like Glue's FindMatches.

    Local method (Glue's learned model is not available outside AWS):

    1. Normalise each compared column (``key_columns``, default every string/number/date column
       but ``primary_key``): lower case, punctuation to spaces, runs of spaces collapsed.
    2. Blocking: records are compared only when they share a token prefix (first
       ``block_prefix`` characters of some token); blocks larger than ``max_block_size`` are
       skipped (too common to discriminate).
    3. Similarity of a pair: the mean over compared columns of ``1 - levenshtein / longer length``
       (a column null on both sides does not count, null on one side scores 0).
    4. Pairs scoring at least ``threshold`` are matches; ``match_id`` is the connected component
       of the match graph, named by its smallest record number (records numbered in the order of
       ``primary_key``, else of their content), so the result is deterministic.

    ``compute_confidence`` adds ``match_confidence_score``: the best similarity of the record to
    another record of its group (null for a record matching nothing). Error records get a null
    ``match_id``. The match graph's edges are collected on the driver, which suits the data sizes
    of a local lake.
    """
    if not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"FindMatches: threshold must be within (0, 1], got {threshold!r}")
    if block_prefix < 1:
        raise ValueError(f"FindMatches: block_prefix must be >= 1, got {block_prefix}")
    fields = {f.name: f for f in data_fields(df)}
    if primary_key is not None and primary_key not in fields:
        raise ValueError(f"FindMatches: primary key column {primary_key!r} not found; available: {sorted(fields)}")
    for reserved in ("match_id", "match_confidence_score"):
        if reserved in fields:
            raise ValueError(f"FindMatches: the frame already has a {reserved!r} column")
    if key_columns is None:
        keys = [
            n
            for n, f in fields.items()
            if n != primary_key and (isinstance(f.dataType, (StringType, NumericType)) or _is_temporal(f.dataType))
        ]
    else:
        keys = [key_columns] if isinstance(key_columns, str) else list(key_columns)
        missing = [k for k in keys if k not in fields]
        if missing:
            raise ValueError(f"FindMatches: key column(s) {missing} not found; available: {sorted(fields)}")
    if not keys:
        raise ValueError("FindMatches: no column to compare records by")

    rid = TEMP_PREFIX + "rid"
    content = F.to_json(F.struct(*[col(n) for n in fields]))
    order = ([col(primary_key).asc_nulls_last()] if primary_key else []) + [F.xxhash64(content), content]
    good = good_rows(df)
    numbered = good.withColumn(rid, F.row_number().over(Window.orderBy(*order)).cast(LongType()))
    numbered = numbered.localCheckpoint(eager=True)

    norm_names = [f"{TEMP_PREFIX}k{i}" for i in range(len(keys))]
    normed = numbered.select(col(rid), *[_normalise(col(k)).alias(n) for k, n in zip(keys, norm_names, strict=True)])
    tokens = F.split(F.concat_ws(" ", *[col(n) for n in norm_names]), " ")
    prefixes = F.array_distinct(
        F.filter(F.transform(tokens, lambda t: F.substring(t, 1, block_prefix)), lambda t: F.length(t) > 0)
    )
    blocks = normed.select(col(rid), F.explode(prefixes).alias("block"))
    sizes = blocks.groupBy("block").count()
    skipped = sizes.where(F.col("count") > max_block_size)
    if skipped.limit(1).count():
        log.info("FindMatches: skipping blocks larger than %d records", max_block_size)
    blocks = blocks.join(sizes.where(F.col("count") <= max_block_size).select("block"), "block")
    a, b = blocks.alias("a"), blocks.alias("b")
    pairs = (
        a.join(b, (F.col("a.block") == F.col("b.block")) & (F.col(f"a.{rid}") < F.col(f"b.{rid}")))
        .select(F.col(f"a.{rid}").alias("l"), F.col(f"b.{rid}").alias("r"))
        .distinct()
    )
    left = normed.select(col(rid).alias("l"), *[col(n).alias(f"l_{i}") for i, n in enumerate(norm_names)])
    right = normed.select(col(rid).alias("r"), *[col(n).alias(f"r_{i}") for i, n in enumerate(norm_names)])
    scored = pairs.join(left, "l").join(right, "r")
    sims: list[Column] = []
    for i in range(len(keys)):
        lv, rv = F.col(f"l_{i}"), F.col(f"r_{i}")
        longer = F.greatest(F.length(lv), F.length(rv))
        sim = F.when(lv.isNull() & rv.isNull(), F.lit(None)).when(lv.isNull() | rv.isNull(), F.lit(0.0))
        sim = sim.when(longer == 0, F.lit(1.0)).otherwise(1.0 - F.levenshtein(lv, rv) / longer)
        sims.append(sim.cast(DoubleType()))
    total = sum((F.coalesce(s, F.lit(0.0)) for s in sims), F.lit(0.0))
    counted = sum((F.when(s.isNotNull(), 1).otherwise(0) for s in sims), F.lit(0))
    score = F.when(counted > 0, total / counted)
    edges = scored.select("l", "r", score.alias("score")).where(F.col("score") >= F.lit(float(threshold)))
    edge_rows = edges.collect()
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    best: dict[int, float] = {}
    for e in edge_rows:
        left_id, right_id, s = int(e["l"]), int(e["r"]), float(e["score"])
        ra, rb = find(left_id), find(right_id)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
        best[left_id] = max(best.get(left_id, 0.0), s)
        best[right_id] = max(best.get(right_id, 0.0), s)
    members = sorted(set(parent) | set(best))
    log.info("FindMatches: %d matching pairs over %d records", len(edge_rows), len(members))
    spark = df.sparkSession
    mapping_schema = StructType(
        [
            StructField(rid, LongType(), False),
            StructField("match_id", LongType(), False),
            StructField("match_confidence_score", DoubleType(), True),
        ]
    )
    mapping = spark.createDataFrame([(m, find(m), best.get(m)) for m in members], mapping_schema)
    joined = numbered.join(F.broadcast(mapping), rid, "left")
    out_cols = [col(n) for n in fields] + [F.coalesce(col("match_id"), col(rid)).alias("match_id")]
    if compute_confidence:
        out_cols.append(col("match_confidence_score"))
    if has_errors(df):
        out_cols.append(col(ERROR_COLUMN))
    result = joined.select(*out_cols)
    errors = df.where(~is_good(df)) if has_errors(df) else None
    if errors is not None:
        extra = [F.lit(None).cast(LongType()).alias("match_id")]
        if compute_confidence:
            extra.append(F.lit(None).cast(DoubleType()).alias("match_confidence_score"))
        result = result.unionByName(errors.select(*[col(n) for n in fields], *extra, col(ERROR_COLUMN)))
    return result


def _is_temporal(dt: DataType) -> bool:
    return dt.typeName() in ("date", "timestamp", "timestamp_ntz")


def _normalise(value: Column) -> Column:
    text = F.lower(value.cast(StringType()))
    text = F.regexp_replace(text, r"[^\p{L}\p{N}]+", " ")
    text = F.trim(F.regexp_replace(text, r"\s+", " "))
    return F.when(text != "", text)


__all__ = ["fill_missing_values", "find_matches"]
