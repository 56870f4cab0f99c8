"""``awsgluedq``: Glue Data Quality. Scripts that import it load; evaluating rules is not implemented."""
