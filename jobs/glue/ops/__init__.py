"""Structural operations of the Glue runtime on Spark DataFrames in the contract's encoding.

Every function takes and returns DataFrames encoded as ``jobs.glue`` describes (one DataFrame per
DynamicFrame, the reserved ``__glue_error`` column, choice fields as flagged structs). The
DynamicFrame methods and the transform classes wrap them.
"""
