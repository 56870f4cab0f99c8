"""``awsglue`` for scripts written against AWS Glue, served by lakeforge's runtime (``jobs.glue``).

Each submodule is the ``jobs.glue`` module of the same name (see ``_alias``): ``awsglue.context``,
``awsglue.dynamicframe``, ``awsglue.transforms``, ``awsglue.utils``, ``awsglue.job``,
``awsglue.gluetypes``, ``awsglue.functions``. Setup puts ``jobs/compat`` on ``sys.path`` of every
interpreter of the environment (``lakeforge-awsglue.pth``).
"""
