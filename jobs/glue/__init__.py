"""lakeforge's Glue-compatible runtime on Spark DataFrames (served to scripts as ``awsglue``).

The data model every module here shares (the contract between the DynamicFrame, its readers,
its transforms and its writers):

* A ``DynamicFrame`` wraps one Spark DataFrame. Its columns are the records' fields, plus one
  reserved column ``ERROR_COLUMN`` (``__glue_error``): null for a good record; for an error record a
  struct ``(message: string, stage: string, info: string, record: string)`` where ``record`` is the
  original record as JSON text and ``stage`` names the transformation that produced the error.
  Error records travel with the frame (so counts include upstream errors); ``toDF()`` drops them
  and the column.
* A *choice* field (values of several types across records) is a struct column whose StructField
  metadata has ``{"glue.choice": true}``; its sub-fields are named by Glue type names (``long``,
  ``double``, ``string``, ``boolean``, ``struct``, ``array``, ...) and at most one is non-null per
  record. ``resolveChoice`` turns it into a plain column; ``toDF()`` leaves it as that struct
  (Glue's ``make_struct`` shape).
* A field whose every value is null has Spark ``NullType`` (``DropNullFields`` drops it).
* Glue's type system lives in ``gluetypes`` (``awsglue.gluetypes``), converted from the Spark
  schema plus the choice metadata; ``DynamicFrame.schema()`` returns it.
* Locations may be ``s3://bucket/key``: a bucket is a directory under the lake's object-store root
  (``catalog.objectstore.local_path``), and Spark reads and writes ``s3://`` through the project's
  Hadoop FileSystem for that mapping.
"""

ERROR_COLUMN = "__glue_error"
CHOICE_METADATA_KEY = "glue.choice"
