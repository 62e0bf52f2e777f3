"""The HTTP gateway (``streaming-rec gateway``): the topics over HTTP, and the demo page.

A client of the topics like any other (nothing bypasses Kafka): one AsyncRecClient per
process, FastAPI + uvicorn, OpenAPI at ``/docs``. See docs/gateway.md.
"""
