"""Reports of every flow (pydantic models, the flows' return values) and how each reads in the Prefect UI
(pure markdown/table renderers). A flow fills its report and publishes these as artifacts."""
