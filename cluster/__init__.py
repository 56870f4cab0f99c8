"""The EMR-like cluster on Ray, and the orchestration of the lake's main pipeline."""
