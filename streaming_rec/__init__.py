"""streaming_rec: a streaming, real-time recommender on Kafka."""

__version__ = "0.1.0"
