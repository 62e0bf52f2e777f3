"""Query understanding: what a query's text says about the catalog's structure (categories,
attribute conditions, a time window, recency) read as hard filters before retrieval.
See docs/understand.md; :func:`streaming_rec.core.understand.parse.understand` is the entry."""
