"""HTTP routes, one module per resource. Routes never catch errors: see ``catalog.errors``."""
